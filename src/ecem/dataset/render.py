"""Segments and prefix clips, linear in dialogue length.

Each usable utterance clip of a dialogue is encoded once as a *segment*: the clip minus the
frames it repeats from the previous usable clip (see `ecem.dataset.dedup`). The clip of sample
U_n is then the concatenation of segments U_0..U_n, assembled by ffmpeg's concat demuxer with
stream copy (no re-encoding), so the encoding work grows with the number of utterances, not
with the sum of prefix lengths. With ``render.prefix_clips: playlist`` the prefix clip is instead
an ffconcat list of those segments (:mod:`ecem.playlist`): the same packets reach the decoder, so
readers get identical frames, and disk stays linear too (a stream-copied mp4 repeats every earlier
segment's bytes). All segments of a dialogue share codec, size, frame rate and
audio format, which stream-copy concatenation requires. A bad clip (missing, corrupt, or one
whose segment fails to encode) is skipped as context and quarantines the samples that target it.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from ecem.dataset.dedup import Overlap, csv_overlap_frames, refine_overlap
from ecem.dataset.probe import USABLE_STATUSES
from ecem.media import FFmpegError, probe_clip, read_frames, run_ffmpeg
from ecem.meld import UTTERANCE_KEYS
from ecem.playlist import PLAYLIST_SUFFIX, write_playlist
from ecem.sharding import dialogue_key, shard_of

log = logging.getLogger(__name__)

SEGMENT_COLUMNS = [
    *UTTERANCE_KEYS, "video_path", "fps", "source_n_frames",
    "first_frame", "last_frame", "n_frames", "overlap_frames", "overlap_csv_frames",
    "overlap_source", "overlap_distance", "render_fps", "segment_path", "status", "status_detail",
]
CLIP_COLUMNS = [
    "sample_id", *UTTERANCE_KEYS, "status", "reason", "status_detail",
    "segments", "skipped_utterances", "n_frames", "fps", "duration_s", "frames_removed",
    "clip_path",
]


@dataclasses.dataclass
class _Segment:
    row: dict[str, Any]
    overlap: Overlap
    path: Path | None = None
    status: str = "ok"
    detail: str = ""

    @property
    def n_frames(self) -> int:
        return int(self.row["n_frames"]) - self.overlap.frames


def atempo_chain(factor: float) -> str:
    """ffmpeg `atempo` filters whose product is `factor` (each step must lie in 0.5..2)."""
    steps = []
    while factor < 0.5 or factor > 2.0:
        step = 0.5 if factor < 0.5 else 2.0
        steps.append(step)
        factor /= step
    steps.append(factor)
    return ",".join(f"atempo={f:.9f}" for f in steps)


def rate_text(fps: float) -> str:
    """A frame rate as the exact fraction ffmpeg should use (23.976… → 24000/1001)."""
    rate = Fraction(fps).limit_denominator(1001)
    return f"{rate.numerator}/{rate.denominator}"


def encode_segment(src: str, dst: Path, first_frame: int, fps: float, size: tuple[int, int],
                   has_audio: bool, n_frames: int, render: dict[str, Any],
                   out_fps: float | None = None) -> None:
    """Re-encode `src` from `first_frame` on, at a fixed size and audio format (H.264 + AAC).

    With `out_fps` different from the clip's `fps`, the clip is re-timed: every frame is kept and
    shown at `out_fps`, and the audio is tempo-scaled by the same factor (pitch kept), so a
    dialogue whose clips have mixed frame rates concatenates with audio and video in sync.
    """
    out_fps = fps if out_fps is None or abs(out_fps - fps) < 1e-3 else out_fps
    start_s = first_frame / fps
    args = ["-i", src]
    tempo = "" if out_fps == fps else f",{atempo_chain(out_fps / fps)}"
    if has_audio:
        audio_map = "0:a:0"
        afilter = ["-af", f"atrim=start={start_s:.6f},asetpts=PTS-STARTPTS{tempo}"]
    else:  # give silent clips a silent track so every segment has the same streams
        args += ["-f", "lavfi", "-t", f"{n_frames / out_fps:.6f}", "-i",
                 f"anullsrc=r={render['audio_rate']}:cl=mono"]
        audio_map, afilter = "1:a:0", []
    timing = "setpts=PTS-STARTPTS" if out_fps == fps else (
        f"setpts=N/({rate_text(out_fps)})/TB,fps={rate_text(out_fps)}")
    args += [
        "-map", "0:v:0", "-map", audio_map,
        "-vf", f"trim=start_frame={first_frame},{timing},scale={size[0]}:{size[1]},setsar=1",
        *afilter, "-fps_mode", "passthrough",
        "-c:v", "libx264", "-preset", render["preset"], "-crf", str(render["crf"]),
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-ar", str(render["audio_rate"]),
        "-ac", "1", str(dst),
    ]
    run_ffmpeg(args)


def concat_segments(paths: list[Path], dst: Path) -> None:
    """Join segments with ffmpeg's concat demuxer and stream copy (no re-encoding)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, dir=dst.parent) as fh:
        for p in paths:
            fh.write(f"file '{Path(p).resolve()}'\n")
        listing = Path(fh.name)
    try:
        run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    "-movflags", "+faststart", str(dst)])
    finally:
        listing.unlink()


def prefix_clip_mode(render: dict[str, Any]) -> str:
    """`files` (stream-copied mp4 per sample) or `playlist` (ffconcat list per sample)."""
    mode = str(render.get("prefix_clips", "files"))
    if mode not in ("files", "playlist"):
        raise ValueError(f"dataset.render.prefix_clips must be files | playlist, not {mode!r}")
    return mode


def _gray_frames(row: dict[str, Any], count: int, from_end: bool, size: tuple[int, int]) -> np.ndarray:
    """The first or last `count` frames of a clip, in gray at the dialogue's common `size` (MELD
    mixes resolutions), for the overlap check."""
    total = int(row["n_frames"])
    count = min(count, total)
    idx = range(total - count, total) if from_end else range(count)
    return read_frames(row["video_path"], list(idx), size=size, gray=True)


def dialogue_format(usable: pd.DataFrame) -> tuple[tuple[int, int], float]:
    """The size and frame rate every segment of a dialogue is rendered at: those of most of its
    usable clips (the first such clip on ties), so stream-copy concatenation works."""
    if not len(usable):
        return (0, 0), float("nan")
    sizes = list(zip(usable["width"].astype(int), usable["height"].astype(int)))
    rates = [round(float(f), 3) for f in usable["fps"]]
    size = max(sizes, key=lambda s: (sizes.count(s), -sizes.index(s)))
    rate = max(rates, key=lambda r: (rates.count(r), -rates.index(r)))
    return size, float(usable["fps"].iloc[rates.index(rate)])


def render_dialogue(
    utterances: pd.DataFrame, targets: list[int], out_dir: Path, dedup: dict[str, Any],
    render: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Encode one dialogue's segments and assemble its samples' prefix clips.

    `utterances`: the dialogue's probed rows (utterances.parquet), `targets`: the utterance ids
    of its samples. Returns (segment records, clip records).
    """
    utterances = utterances.sort_values("utterance_id")
    split, dia = utterances["meld_split"].iloc[0], int(utterances["dialogue_id"].iloc[0])
    seg_dir = out_dir / "segments" / split
    clip_dir = out_dir / "clips" / split
    seg_dir.mkdir(parents=True, exist_ok=True)
    clip_dir.mkdir(parents=True, exist_ok=True)
    usable = utterances[utterances["status"].isin(USABLE_STATUSES)]
    size, out_fps = dialogue_format(usable)
    playlist = prefix_clip_mode(render) == "playlist"

    segments: list[_Segment] = []
    failed: dict[int, tuple[str, str]] = {  # utterance id → (reason, detail)
        int(r.utterance_id): (str(r.status), f"{r.status}: {r.status_detail}")
        for r in utterances.itertuples() if r.status not in USABLE_STATUSES
    }
    prev: dict[str, Any] | None = None
    for row in usable.to_dict("records"):
        uid = int(row["utterance_id"])
        fps = float(row["fps"])
        if prev is None:
            overlap = Overlap(0, 0, "first")
        else:
            est = csv_overlap_frames(prev["end_s"], row["start_s"], fps)
            overlap = Overlap(0, est, "csv_none")
            if est > 0 and abs(float(prev["fps"]) - fps) >= 1e-3:
                # Frame i of one clip is not frame i of the other in time: nothing is cut.
                overlap = Overlap(0, est, "fps_mismatch")
            elif est > 0:  # decode only when the times say the clips overlap
                need = est + int(dedup["search_frames"])
                overlap = refine_overlap(
                    _gray_frames(prev, need, True, size), _gray_frames(row, need + 1, False, size),
                    est, int(dedup["search_frames"]), float(dedup["max_distance"]),
                    float(dedup["tie_tolerance"]))
        seg = _Segment(row, overlap, seg_dir / f"dia{dia}_utt{uid}.mp4")
        if abs(out_fps - fps) >= 1e-3:
            seg.detail = f"re-timed from {fps:.3f} to {out_fps:.3f} fps (frames kept, audio tempo-scaled)"
            log.info("%s/dia%d_utt%d: %s", split, dia, uid, seg.detail)
        try:
            encode_segment(row["video_path"], seg.path, overlap.frames, fps, size,
                           bool(row["has_audio"]), seg.n_frames, render, out_fps)
            got = probe_clip(seg.path).n_frames
            if got != seg.n_frames:
                raise FFmpegError(f"segment has {got} frames, expected {seg.n_frames}")
        except FFmpegError as exc:
            seg.status, seg.detail = "render_failed", str(exc)
            failed[uid] = ("render_failed", f"render_failed: {exc}")
            log.warning("%s/dia%d_utt%d: %s", split, dia, uid, exc)
            segments.append(seg)
            continue
        segments.append(seg)
        prev = row

    good = [s for s in segments if s.status == "ok"]
    clips: list[dict[str, Any]] = []
    for target in sorted(set(targets)):
        sid = f"{split}/dia{dia}_utt{target}"
        record: dict[str, Any] = {"sample_id": sid, "meld_split": split, "dialogue_id": dia,
                                  "utterance_id": target}
        parts = [s for s in good if int(s.row["utterance_id"]) <= target]
        skipped = sorted(u for u in failed if u <= target)
        if target in failed:
            clips.append({**record, "status": "quarantined", "reason": failed[target][0],
                          "status_detail": f"target clip unusable ({failed[target][1]})",
                          "segments": [], "skipped_utterances": skipped, "n_frames": 0,
                          "fps": float("nan"), "duration_s": float("nan"), "frames_removed": 0,
                          "clip_path": None})
            continue
        if playlist:
            clip_path = clip_dir / f"dia{dia}_utt{target}{PLAYLIST_SUFFIX}"
            write_playlist([s.path for s in parts], clip_path)
        else:
            clip_path = clip_dir / f"dia{dia}_utt{target}.mp4"
            concat_segments([s.path for s in parts], clip_path)
        n_frames = sum(s.n_frames for s in parts)
        fps = out_fps
        clips.append({
            **record, "status": "ok", "reason": "",
            "status_detail": f"skipped context utterances {skipped}" if skipped else "",
            "segments": [{"utterance_id": int(s.row["utterance_id"]), "first_frame": s.overlap.frames,
                          "last_frame": int(s.row["n_frames"]) - 1, "n_frames": s.n_frames,
                          "overlap_frames": s.overlap.frames} for s in parts],
            "skipped_utterances": skipped, "n_frames": n_frames, "fps": fps,
            "duration_s": n_frames / fps, "frames_removed": sum(s.overlap.frames for s in parts),
            "clip_path": str(clip_path),
        })
    seg_records = [{
        "meld_split": split, "dialogue_id": dia, "utterance_id": int(s.row["utterance_id"]),
        "video_path": s.row["video_path"], "fps": float(s.row["fps"]),
        "source_n_frames": int(s.row["n_frames"]), "first_frame": s.overlap.frames,
        "last_frame": int(s.row["n_frames"]) - 1, "n_frames": s.n_frames,
        "overlap_frames": s.overlap.frames, "overlap_csv_frames": s.overlap.csv_frames,
        "overlap_source": s.overlap.source, "overlap_distance": s.overlap.distance,
        "render_fps": out_fps, "segment_path": str(s.path) if s.status == "ok" else None,
        "status": s.status, "status_detail": s.detail,
    } for s in segments]
    return seg_records, clips


def render_shard(
    samples: pd.DataFrame, utterances: pd.DataFrame, shard: int, n_shards: int, out_dir: str | Path,
    dedup: dict[str, Any], render: dict[str, Any], threads: int = 1,
    progress: Callable[[Any], Any] = tqdm,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Render every dialogue of `shard`: its segments and its samples' prefix clips."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mine = samples[[shard_of(dialogue_key(s, d), n_shards) == shard
                    for s, d in zip(samples["meld_split"], samples["dialogue_id"])]]
    jobs = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for (split, dia), grp in mine.groupby(["meld_split", "dialogue_id"]):
            utts = utterances[(utterances["meld_split"] == split) & (utterances["dialogue_id"] == dia)]
            jobs.append(pool.submit(render_dialogue, utts, grp["utterance_id"].astype(int).tolist(),
                                    out_dir, dedup, render))
        results = [j.result() for j in progress(jobs, desc=f"render shard {shard}", unit="dialogue")]
    seg_rows = [r for segs, _ in results for r in segs]
    clip_rows = [r for _, clips in results for r in clips]
    segs = pd.DataFrame(seg_rows, columns=SEGMENT_COLUMNS)
    clips = pd.DataFrame(clip_rows, columns=CLIP_COLUMNS)
    return segs, clips
