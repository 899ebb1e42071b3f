"""Prefix clips as ffconcat playlists decode exactly like the stream-copied mp4s they replace."""

import shutil

import av
import numpy as np
import pandas as pd
import pytest

from ecem.clip_probe import probe_clip
from ecem.dataset.render import concat_segments, prefix_clip_mode, render_dialogue
from ecem.features.frames import decode_frames
from ecem.ffmpeg import run_ffmpeg
from ecem.media import open_media, read_frames
from ecem.playlist import playlist_entries, write_playlist

RATE = "24000/1001"
FPS = 24000 / 1001
DEDUP = {"search_frames": 3, "max_distance": 8.0, "tie_tolerance": 1.0}
LENGTHS = [26, 31, 17, 22]


def _source(path, frames, offset):
    """A 160×120 clip with audio; `offset` shifts testsrc2 so every utterance looks different."""
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={RATE}:duration=4",
                "-f", "lavfi", "-i", f"sine=frequency={300 + 100 * offset}:duration=4",
                "-vf", f"trim=start_frame={7 * offset},setpts=PTS-STARTPTS",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-frames:v", str(frames),
                "-c:a", "aac", "-shortest", str(path)])
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One four-utterance dialogue rendered with playlists; its segments are shared."""
    root = tmp_path_factory.mktemp("playlist")
    rows, t = [], 0.0
    for u, n in enumerate(LENGTHS):
        src = _source(root / f"src{u}.mp4", n, u)
        rows.append({"meld_split": "train", "dialogue_id": 3, "utterance_id": u, "status": "ok",
                     "status_detail": "", "video_path": str(src), "fps": FPS, "n_frames": n,
                     "has_audio": True, "start_s": t, "end_s": t + n / FPS, "width": 160,
                     "height": 120, "rotation": 0, "variable_rate": False})
        t += n / FPS + 1.0  # CSV times say no two clips overlap
    render = {"preset": "veryfast", "crf": 20, "audio_rate": 16000, "prefix_clips": "playlist"}
    segs, clips = render_dialogue(pd.DataFrame(rows), [1, 2, 3], root / "out", DEDUP, render)
    return root, segs, clips


def _decode(path):
    with open_media(path) as container:
        stream = container.streams.video[0]
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]


def test_playlist_clips_decode_to_the_frames_of_the_concatenated_mp4(rendered):
    root, segs, clips = rendered
    assert all(c["clip_path"].endswith("dia3_utt%d.ffconcat" % c["utterance_id"]) for c in clips)
    for clip in clips:
        parts = [s["segment_path"] for s in segs if s["utterance_id"] <= clip["utterance_id"]]
        mp4 = root / f"joined{clip['utterance_id']}.mp4"
        concat_segments(parts, mp4)
        got, want = _decode(clip["clip_path"]), _decode(mp4)
        assert len(got) == len(want) == clip["n_frames"] == sum(LENGTHS[: clip["utterance_id"] + 1])
        assert all(np.array_equal(g[1], w[1]) for g, w in zip(got, want))  # bitwise: stream copy
        # The same timeline up to one constant shift (mp4 muxing offsets by the AAC priming):
        # no gap or jump at the segment boundaries.
        shift = np.array([g[0] for g in got]) - np.array([w[0] for w in want])
        assert np.ptp(shift) < 1e-3 and np.allclose(np.diff([g[0] for g in got]), 1 / FPS, atol=1e-3)
        pl, mp = probe_clip(clip["clip_path"]), probe_clip(mp4)
        assert (pl.status, pl.n_frames, pl.width, pl.height) == (mp.status, mp.n_frames, 160, 120)
        assert pl.fps == pytest.approx(mp.fps) and pl.duration_s == pytest.approx(clip["duration_s"])
        assert pl.audio_peak_dbfs == pytest.approx(mp.audio_peak_dbfs, abs=0.5)
        idx = [0, LENGTHS[0] - 1, LENGTHS[0], clip["n_frames"] - 1]  # across a boundary
        assert np.array_equal(read_frames(clip["clip_path"], idx), read_frames(mp4, idx))
        assert np.array_equal(read_frames(clip["clip_path"], idx), np.stack([got[i][1] for i in idx]))
        assert np.array_equal(decode_frames(clip["clip_path"], idx), read_frames(mp4, idx))


def test_playlist_bytes_are_linear_in_dialogue_length(rendered):
    _, segs, clips = rendered
    from pathlib import Path

    seg_bytes = sum(Path(s["segment_path"]).stat().st_size for s in segs)
    clip_bytes = sum(Path(c["clip_path"]).stat().st_size for c in clips)
    assert clip_bytes < 0.01 * seg_bytes  # an mp4 per prefix would be ~2× seg_bytes here
    assert Path(clips[-1]["clip_path"]).read_text().splitlines() == [
        "ffconcat version 1.0", *[f"file '../../segments/train/dia3_utt{u}.mp4'" for u in range(4)]]


def test_a_moved_results_tree_still_decodes(rendered, tmp_path):
    root, _, clips = rendered
    shutil.copytree(root / "out", tmp_path / "moved")
    rel = clips[-1]["clip_path"][len(str(root / "out")) + 1:]
    assert np.array_equal(read_frames(tmp_path / "moved" / rel, [40]),
                          read_frames(clips[-1]["clip_path"], [40]))


def test_playlists_name_only_relative_files(tmp_path):
    seg = tmp_path / "segments" / "a.mp4"
    seg.parent.mkdir()
    seg.write_bytes(b"x")
    (tmp_path / "clips").mkdir()
    write_playlist([seg], tmp_path / "clips" / "p.ffconcat")
    assert playlist_entries(tmp_path / "clips" / "p.ffconcat") == [tmp_path / "clips" / "../segments/a.mp4"]
    for bad in ["file '/etc/passwd'", "file 'http://x/y.mp4'", "duration 3"]:
        (tmp_path / "bad.ffconcat").write_text(f"ffconcat version 1.0\n{bad}\n")
        with pytest.raises(ValueError, match="unexpected playlist line"):
            playlist_entries(tmp_path / "bad.ffconcat")
        assert probe_clip(tmp_path / "bad.ffconcat").status == "corrupt"
    (tmp_path / "bad.ffconcat").write_text("file 'a.mp4'\n")
    with pytest.raises(ValueError, match="not an ffconcat playlist"):
        playlist_entries(tmp_path / "bad.ffconcat")


def test_a_playlist_whose_segment_is_gone_is_corrupt(rendered, tmp_path):
    root, _, clips = rendered
    shutil.copytree(root / "out", tmp_path / "out")
    (tmp_path / "out/segments/train/dia3_utt1.mp4").unlink()
    probe = probe_clip(tmp_path / "out/clips/train/dia3_utt2.ffconcat")
    assert probe.status == "corrupt" and "dia3_utt1.mp4 not found" in probe.status_detail
    with pytest.raises(av.error.FFmpegError):  # plain av.open cannot read it: safe mode
        av.open(str(root / "out/clips/train/dia3_utt2.ffconcat"), format="concat").close()


def test_prefix_clip_mode_defaults_to_files_and_rejects_others():
    assert prefix_clip_mode({}) == "files" and prefix_clip_mode({"prefix_clips": "playlist"}) == "playlist"
    with pytest.raises(ValueError, match="files | playlist"):
        prefix_clip_mode({"prefix_clips": "m3u"})
