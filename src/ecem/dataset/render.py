"""Segments and prefix clips, linear in dialogue length.

Each usable utterance clip of a dialogue is encoded once as a *segment*: the clip minus the
frames it repeats from the previous usable clip (see `ecem.dataset.dedup`). The clip of sample
U_n is then the concatenation of segments U_0..U_n, assembled by ffmpeg's concat demuxer with
stream copy (no re-encoding), so the encoding work grows with the number of utterances, not
with the sum of prefix lengths. With ``render.prefix_clips: playlist`` the prefix clip is instead
an ffconcat list of those segments (:mod:`ecem.playlist`): the same packets reach the decoder, so
readers get identical frames, and disk stays linear too (a stream-copied mp4 repeats every earlier
segment's bytes). All segments of a dialogue share codec, size, frame rate and audio format,
which stream-copy concatenation requires. A bad clip (missing, corrupt, or one whose segment fails
to encode) is skipped as context and quarantines the samples that target it; a fault of the
machine while rendering (full disk, I/O error, ffmpeg killed) fails the job instead
(:mod:`ecem.faults`), so no sample is lost to it.

A clip becomes a segment in the dialogue's format as :mod:`ecem.dataset.segment` plans it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
from tqdm import tqdm

from ecem.clip_probe import probe_clip
from ecem.dataset.annotations import sample_id
from ecem.dataset.dedup import Overlap, csv_overlap_frames, refine_overlap
from ecem.dataset.probe import USABLE_STATUSES
from ecem.dataset.segment import SegmentPlan, encode_segment, even_size, plan_segment
from ecem.faults import data_fault
from ecem.ffmpeg import FFmpegError, ffmpeg_url, run_ffmpeg
from ecem.media import read_frames
from ecem.meld import UTTERANCE_KEYS
from ecem.playlist import PLAYLIST_SUFFIX, concat_list, write_playlist
from ecem.sharding import dialogue_key, shard_of

log = logging.getLogger(__name__)

SEGMENT_COLUMNS = [
    *UTTERANCE_KEYS, "video_path", "fps", "source_n_frames",
    "first_frame", "last_frame", "n_frames", "overlap_frames", "overlap_csv_frames",
    "overlap_source", "overlap_distance", "render_fps", "render_width", "render_height",
    "source_frames", "adjustments", "segment_path", "status", "status_detail",
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
    plan: SegmentPlan | None = None
    status: str = "ok"
    detail: str = ""

    @property
    def n_frames(self) -> int:
        if self.plan is not None:
            return self.plan.n_frames
        return int(self.row["n_frames"]) - self.overlap.frames


def concat_segments(paths: list[Path], dst: Path) -> None:
    """Join segments with ffmpeg's concat demuxer and stream copy (no re-encoding); the list
    goes to ffmpeg's stdin, naming each segment by its absolute ``file:`` URL
    (:func:`ecem.playlist.concat_list`), so any character in a folder name is safe."""
    run_ffmpeg(["-protocol_whitelist", "pipe,file", "-f", "concat", "-safe", "0", "-i", "pipe:0",
                "-c", "copy", "-movflags", "+faststart", ffmpeg_url(dst)],
               input_bytes=concat_list(paths).encode(), output=dst)


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
    usable clips (the first such clip on ties; sizes upright), so stream-copy concatenation
    works. The rate is voted by the constant-rate clips when there are any: a variable-rate
    clip's mean rate is no rate to resample the others to."""
    if not len(usable):
        return (0, 0), float("nan")
    sizes = list(zip(usable["width"].astype(int), usable["height"].astype(int)))
    constant = usable[~usable["variable_rate"].astype(bool)]
    voters = constant if len(constant) else usable
    rates = [round(float(f), 3) for f in voters["fps"]]
    size = max(sizes, key=lambda s: (sizes.count(s), -sizes.index(s)))
    rate = max(rates, key=lambda r: (rates.count(r), -rates.index(r)))
    return size, float(voters["fps"].iloc[rates.index(rate)])


@dataclasses.dataclass(frozen=True)
class _Dialogue:
    """One dialogue being rendered: its key and the format all its segments share
    (`dialogue_format`: `size` as voted, `fps`; `canvas`: that size made even for x264)."""

    split: str
    dialogue_id: int
    size: tuple[int, int]
    fps: float

    @property
    def canvas(self) -> tuple[int, int]:
        return even_size(self.size)

    def sample_id(self, utterance_id: int) -> str:
        return sample_id(self.split, self.dialogue_id, utterance_id)

    def file(self, out_dir: Path, kind: str, utterance_id: int, suffix: str) -> Path:
        """`out_dir/kind/<sample id><suffix>`: segments and clips are filed by sample id, so
        under a folder per split (`train/dia4_utt2.mp4`)."""
        return out_dir / kind / f"{self.sample_id(utterance_id)}{suffix}"


def _overlap(prev: dict[str, Any] | None, row: dict[str, Any], size: tuple[int, int],
             dedup: dict[str, Any]) -> Overlap:
    """How many of `row`'s first frames repeat the end of `prev`, the last clip before it that
    rendered (None: `row` starts the dialogue's video)."""
    if prev is None:
        return Overlap(0, 0, "first")
    fps = float(row["fps"])
    est = csv_overlap_frames(prev["end_s"], row["start_s"], fps)
    if est <= 0:
        return Overlap(0, est, "csv_none")
    if abs(float(prev["fps"]) - fps) >= 1e-3 or prev["variable_rate"] or row["variable_rate"]:
        # Frame i of one clip is not frame i of the other in time: nothing is cut.
        return Overlap(0, est, "fps_mismatch")
    need = est + int(dedup["search_frames"])  # decode only when the times say the clips overlap
    return refine_overlap(_gray_frames(prev, need, True, size), _gray_frames(row, need + 1, False, size),
                          est, int(dedup["search_frames"]), float(dedup["max_distance"]),
                          float(dedup["tie_tolerance"]))


def _encode(seg: _Segment, dialogue: _Dialogue, render: dict[str, Any]) -> None:
    """Plan `seg` in the dialogue's format, encode it and check its frame count. A fault of the
    clip marks the segment `render_failed`; a fault of the machine (EnvironmentFault) fails the
    job."""
    row = seg.row
    name = dialogue.sample_id(int(row["utterance_id"]))
    try:
        seg.plan = plan_segment(row, seg.overlap.frames, dialogue.fps, dialogue.canvas)
        seg.detail = "; ".join(seg.plan.notes)
        if seg.detail:
            log.info("%s: %s", name, seg.detail)
        encode_segment(row["video_path"], seg.path, seg.plan, bool(row["has_audio"]), render)
        got = probe_clip(seg.path).n_frames
        if got != seg.n_frames:
            raise FFmpegError(f"segment has {got} frames, expected {seg.n_frames}")
    except (FFmpegError, av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        why = str(exc) if isinstance(exc, FFmpegError) else data_fault(exc, row["video_path"])
        seg.status, seg.detail = "render_failed", why
        log.warning("%s: %s", name, why)


def _render_segments(usable: pd.DataFrame, dialogue: _Dialogue, out_dir: Path, dedup: dict[str, Any],
                     render: dict[str, Any]) -> list[_Segment]:
    """Every usable clip's segment, in utterance order, each cut where it repeats the last clip
    that rendered before it (a clip that failed is no one's predecessor)."""
    segments: list[_Segment] = []
    prev: dict[str, Any] | None = None
    for row in usable.to_dict("records"):
        seg = _Segment(row, _overlap(prev, row, dialogue.size, dedup),
                       dialogue.file(out_dir, "segments", int(row["utterance_id"]), ".mp4"))
        _encode(seg, dialogue, render)
        segments.append(seg)
        if seg.status == "ok":
            prev = row
    return segments


def _left_out(utterances: pd.DataFrame, segments: list[_Segment]) -> dict[int, tuple[str, str]]:
    """Utterance id → (reason, detail) of each clip that is in no prefix clip: unusable when
    probed, or its segment failed to render."""
    left_out = {int(r.utterance_id): (str(r.status), f"{r.status}: {r.status_detail}")
                for r in utterances.itertuples() if r.status not in USABLE_STATUSES}
    left_out.update({int(s.row["utterance_id"]): ("render_failed", f"render_failed: {s.detail}")
                     for s in segments if s.status != "ok"})
    return left_out


def _prefix_clip(target: int, dialogue: _Dialogue, good: list[_Segment], left_out: dict[int, tuple[str, str]],
                 out_dir: Path, playlist: bool) -> dict[str, Any]:
    """The clip record of sample `target`, its prefix clip (the good segments up to it) written;
    quarantined, without a clip, when its own clip is left out."""
    record: dict[str, Any] = {"sample_id": dialogue.sample_id(target), "meld_split": dialogue.split,
                              "dialogue_id": dialogue.dialogue_id, "utterance_id": target}
    parts = [s for s in good if int(s.row["utterance_id"]) <= target]
    skipped = sorted(u for u in left_out if u <= target)
    if target in left_out:
        reason, detail = left_out[target]
        return {**record, "status": "quarantined", "reason": reason,
                "status_detail": f"target clip unusable ({detail})",
                "segments": [], "skipped_utterances": skipped, "n_frames": 0,
                "fps": float("nan"), "duration_s": float("nan"), "frames_removed": 0, "clip_path": None}
    if playlist:
        clip_path = dialogue.file(out_dir, "clips", target, PLAYLIST_SUFFIX)
        write_playlist([s.path for s in parts], clip_path)
    else:
        clip_path = dialogue.file(out_dir, "clips", target, ".mp4")
        concat_segments([s.path for s in parts], clip_path)
    n_frames = sum(s.n_frames for s in parts)
    return {
        **record, "status": "ok", "reason": "",
        "status_detail": f"skipped context utterances {skipped}" if skipped else "",
        "segments": [{"utterance_id": int(s.row["utterance_id"]), "first_frame": s.overlap.frames,
                      "last_frame": int(s.row["n_frames"]) - 1, "n_frames": s.n_frames,
                      "overlap_frames": s.overlap.frames} for s in parts],
        "skipped_utterances": skipped, "n_frames": n_frames, "fps": dialogue.fps,
        "duration_s": n_frames / dialogue.fps, "frames_removed": sum(s.overlap.frames for s in parts),
        "clip_path": str(clip_path),
    }


def _segment_record(s: _Segment, dialogue: _Dialogue) -> dict[str, Any]:
    """The segments-table row (`SEGMENT_COLUMNS`) of `s`."""
    return {
        "meld_split": dialogue.split, "dialogue_id": dialogue.dialogue_id,
        "utterance_id": int(s.row["utterance_id"]),
        "video_path": s.row["video_path"], "fps": float(s.row["fps"]),
        "source_n_frames": int(s.row["n_frames"]), "first_frame": s.overlap.frames,
        "last_frame": int(s.row["n_frames"]) - 1, "n_frames": s.n_frames,
        "overlap_frames": s.overlap.frames, "overlap_csv_frames": s.overlap.csv_frames,
        "overlap_source": s.overlap.source, "overlap_distance": s.overlap.distance,
        "render_fps": dialogue.fps, "render_width": dialogue.canvas[0], "render_height": dialogue.canvas[1],
        "source_frames": list(s.plan.source_frames) if s.plan else [],
        "adjustments": list(s.plan.adjustments) if s.plan else [],
        "segment_path": str(s.path) if s.status == "ok" else None,
        "status": s.status, "status_detail": s.detail,
    }


def render_dialogue(
    utterances: pd.DataFrame, targets: list[int], out_dir: Path, dedup: dict[str, Any],
    render: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Encode one dialogue's segments and assemble its samples' prefix clips.

    `utterances`: the dialogue's probed rows (utterances.parquet), `targets`: the utterance ids
    of its samples. Returns (segment records, clip records).
    """
    utterances = utterances.sort_values("utterance_id")
    usable = utterances[utterances["status"].isin(USABLE_STATUSES)]
    dialogue = _Dialogue(utterances["meld_split"].iloc[0], int(utterances["dialogue_id"].iloc[0]),
                         *dialogue_format(usable))
    for kind in ("segments", "clips"):
        (out_dir / kind / dialogue.split).mkdir(parents=True, exist_ok=True)
    playlist = prefix_clip_mode(render) == "playlist"
    segments = _render_segments(usable, dialogue, out_dir, dedup, render)
    good = [s for s in segments if s.status == "ok"]
    left_out = _left_out(utterances, segments)
    clips = [_prefix_clip(target, dialogue, good, left_out, out_dir, playlist) for target in sorted(set(targets))]
    return [_segment_record(s, dialogue) for s in segments], clips


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
