"""Clips that do not match their dialogue's format render upright, fitted, even-sized and in
sync; a full disk while encoding fails the render and the rerun is byte-identical; any character
in a folder name is safe. Real ffmpeg on tiny synthetic clips (a few dozen frames, 48×32)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from ecem.clip_probe import probe_clip
from ecem.dataset.render import render_dialogue
from ecem.faults import EnvironmentFault
from ecem.ffmpeg import run_ffmpeg
from ecem.media import read_frames
from ecem.playlist import PLAYLIST_SUFFIX

FPS = 24.0
DEDUP = {"search_frames": 2, "max_distance": 8.0, "tie_tolerance": 1.0}
RENDER = {"preset": "ultrafast", "crf": 20, "audio_rate": 16000}
# every frame a flat gray of its own (frame n < 50: luma 20 + 4n), told apart after encoding
NUMBERED = "geq=lum='20+4*N':cb=128:cr=128"
WEIRD = "we ird 'sq' \"dq\" $(touch X) `touch Y` ü ?#:"


def clip(path: Path, size=(48, 32), frames=24, rate="24", vf="", pix_fmt="yuv420p",
         before: tuple[str, ...] = ()) -> Path:
    """A clip of testsrc2 (every frame different) with a tone, `frames` frames long."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("tmp-" + path.name)
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size=48x32:rate={rate}",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
                "-vf", ",".join([*([vf] if vf else []), f"scale={size[0]}:{size[1]}"]),
                "-frames:v", str(frames), "-t", str(frames / float(rate)),
                "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pix_fmt,
                "-c:a", "aac", str(tmp)])
    run_ffmpeg([*before, "-i", str(tmp), "-c", "copy", str(path)])
    tmp.unlink()
    return path


def rows(*paths: Path) -> pd.DataFrame:
    """Probed utterance rows of one dialogue (CSV times: no overlaps)."""
    out, t = [], 0.0
    for u, path in enumerate(paths):
        probe = probe_clip(path)
        out.append({"meld_split": "train", "dialogue_id": 7, "utterance_id": u, "video_path": str(path),
                    "start_s": t, "end_s": t + probe.duration_s, "status": probe.status,
                    "status_detail": probe.status_detail, "fps": probe.fps, "n_frames": probe.n_frames,
                    "width": probe.width, "height": probe.height, "has_audio": probe.has_audio,
                    "rotation": probe.rotation, "variable_rate": probe.variable_rate})
        t += probe.duration_s + 1.0
    return pd.DataFrame(out)


def render(utts: pd.DataFrame, out: Path, **cfg):
    segs, clips = render_dialogue(utts, list(utts["utterance_id"]), out, DEDUP, {**RENDER, **cfg})
    return {s["utterance_id"]: s for s in segs}, {c["utterance_id"]: c for c in clips}


def durations(path) -> tuple[float, float]:
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        return float(v.duration * v.time_base), float(a.duration * a.time_base)


def test_a_rotated_clip_renders_upright_and_fitted_not_squashed(tmp_path):
    # top half white, bottom half black; tagged "rotate 90° counter-clockwise" as phones do
    halves = ("drawbox=x=0:y=0:w=iw:h=ih/2:color=white:t=fill,"
              "drawbox=x=0:y=ih/2:w=iw:h=ih/2:color=black:t=fill")
    plain = clip(tmp_path / "a.mp4")
    turned = clip(tmp_path / "b.mp4", vf=halves, before=("-display_rotation", "90"))
    probe = probe_clip(turned)
    assert (probe.status, probe.rotation, probe.width, probe.height) == ("ok", 90, 32, 48)
    segs, clips = render(rows(plain, turned), tmp_path / "out")
    seg = segs[1]
    assert seg["status"] == "ok" and seg["adjustments"] == ["rotated", "fitted"]
    assert "turned upright (display matrix: rotated 90°)" in seg["status_detail"]
    assert "fitted 32×48 into 48×32 (aspect kept, pillarboxed)" in seg["status_detail"]
    frame = read_frames(seg["segment_path"], [0])[0].mean(axis=2)
    assert frame.shape == (32, 48)
    assert frame[:, :10].max() < 40 and frame[:, -10:].max() < 40      # black bars: not squashed
    assert frame[:, 16:23].mean() > 200 and frame[:, 26:32].mean() < 40  # the white half is left: upright
    assert clips[1]["status"] == "ok" and probe_clip(clips[1]["clip_path"]).width == 48


def _nearest(frame: np.ndarray, candidates: np.ndarray) -> int:
    return int(np.argmin([np.abs(frame.astype(int) - c.astype(int)).mean() for c in candidates]))


def test_a_variable_rate_clip_is_resampled_by_timestamps_keeping_duration_and_sync(tmp_path):
    plain = clip(tmp_path / "a.mp4", frames=24)
    # 48 frames at 24 fps, every other one dropped after the first second: 36 frames left with
    # their timestamps (12 fps then); the last starts at 46/24 s and lasts 1/24 s (its packet's
    # duration), so the clip spans 47/24 s and its audio 2 s
    vfr = clip(tmp_path / "b.mp4", frames=48,
               vf=f"{NUMBERED},select='lt(n\\,24)+not(mod(n\\,2))'")
    probe = probe_clip(vfr)
    assert probe.variable_rate and probe.n_frames == 36 and probe.duration_s == pytest.approx(47 / 24)
    segs, clips = render(rows(plain, vfr), tmp_path / "out")
    seg = segs[1]
    assert seg["adjustments"] == ["resampled"] and "frame rate varies" in seg["status_detail"]
    assert seg["n_frames"] == 47 and len(seg["source_frames"]) == 47
    assert seg["source_frames"][:24] == list(range(24))
    assert seg["source_frames"][24:28] == [24, 24, 25, 25]                # held frames are repeated
    video_s, audio_s = durations(seg["segment_path"])
    assert video_s == pytest.approx(47 / 24, abs=0.01) and abs(video_s - audio_s) < 0.1
    # every rendered frame is the source frame the segment says it shows
    source, rendered = read_frames(vfr), read_frames(seg["segment_path"])
    assert [_nearest(f, source) for f in rendered] == seg["source_frames"]
    assert clips[1]["n_frames"] == 24 + 47 and clips[1]["duration_s"] == pytest.approx(71 / 24)


def test_a_clip_at_another_constant_rate_is_resampled_not_time_stretched(tmp_path):
    plain = clip(tmp_path / "a.mp4", frames=24)
    fast = clip(tmp_path / "b.mp4", frames=30, rate="30")
    segs, _ = render(rows(plain, fast), tmp_path / "out")
    seg = segs[1]
    assert not probe_clip(fast).variable_rate and seg["adjustments"] == ["resampled"]
    assert seg["n_frames"] == 24 and "30.000 fps: resampled by timestamps to 24.000 fps, 30 → 24" in seg[
        "status_detail"]
    video_s, audio_s = durations(seg["segment_path"])
    assert video_s == pytest.approx(1.0, abs=0.05) and abs(video_s - audio_s) < 0.1


def test_a_dialogue_of_odd_sized_clips_renders_padded_to_even(tmp_path):
    odd = [clip(tmp_path / f"{u}.mp4", size=(33, 25), pix_fmt="yuv444p") for u in range(2)]
    segs, clips = render(rows(*odd), tmp_path / "out")
    for seg in segs.values():
        assert seg["status"] == "ok" and seg["adjustments"] == ["padded_to_even"]
        assert "odd frame size 33×25 padded to 34×26" in seg["status_detail"]
        assert (seg["render_width"], seg["render_height"]) == (34, 26)
    probe = probe_clip(clips[1]["clip_path"])
    assert (probe.status, probe.width, probe.height, probe.n_frames) == ("ok", 34, 26, 48)
    frame = read_frames(clips[1]["clip_path"], [30])[0].astype(int)
    assert frame[:, 33].mean() < 30 and frame[25].mean() < 30  # one black column and row
    assert frame[:25, :33].mean() > 40


@pytest.mark.parametrize("mode", ["files", "playlist"])
def test_segments_and_clips_are_filed_by_sample_id(tmp_path, mode):
    utts = rows(clip(tmp_path / "a.mp4", frames=6), clip(tmp_path / "b.mp4", frames=6))
    utts.loc[1, "status"] = "missing"  # a quarantined sample has an id but no clip
    segs, clips = render(utts, tmp_path / "out", prefix_clips=mode)
    suffix = ".mp4" if mode == "files" else PLAYLIST_SUFFIX
    assert [c["sample_id"] for c in clips.values()] == ["train/dia7_utt0", "train/dia7_utt1"]
    assert segs[0]["segment_path"] == str(tmp_path / "out" / "segments" / "train" / "dia7_utt0.mp4")
    assert clips[0]["clip_path"] == str(tmp_path / "out" / "clips" / "train" / f"dia7_utt0{suffix}")
    assert clips[1]["status"] == "quarantined" and clips[1]["clip_path"] is None


@pytest.mark.parametrize("mode", ["files", "playlist"])
def test_folder_names_with_quotes_shell_syntax_and_url_characters_render(tmp_path, mode):
    base = tmp_path / WEIRD
    utts = rows(clip(base / "MELD" / "a.mp4"), clip(base / "MELD" / "b.mp4"))
    segs, clips = render(utts, base / "out", prefix_clips=mode)
    assert all(s["status"] == "ok" for s in segs.values())
    assert probe_clip(clips[1]["clip_path"]).n_frames == 48
    assert read_frames(clips[1]["clip_path"], [47]).shape == (1, 32, 48, 3)
    for where in (Path.cwd(), tmp_path, base):
        assert not (where / "X").exists() and not (where / "Y").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_while_encoding_fails_the_render_and_the_rerun_is_identical(tmp_path):
    utts = rows(clip(tmp_path / "a.mp4"), clip(tmp_path / "b.mp4", frames=20))
    out = tmp_path / "out"
    clean_segs, clean_clips = render(utts, out)
    clean = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.mp4"))}
    shutil.rmtree(out)
    # the encoder's output path fails once: it sits on a full disk
    (out / "segments/train").mkdir(parents=True)
    (out / "segments/train/dia7_utt1.mp4").symlink_to("/dev/full")
    with pytest.raises(EnvironmentFault) as info:
        render(utts, out)
    assert info.value.cause == "No space left on device" and info.value.path.endswith("dia7_utt1.mp4")
    shutil.rmtree(out)  # what Snakemake does with a failed job's outputs; then space is freed
    segs, clips = render(utts, out)
    assert {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.mp4"))} == clean
    assert segs == clean_segs and clips == clean_clips
