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
whose segment fails to encode) is skipped as context and quarantines the samples that target it;
a fault of the machine while rendering (full disk, I/O error, ffmpeg killed) fails the job instead
(:mod:`ecem.faults`), so no sample is lost to it.

Clips that do not match the dialogue's format are brought to it, and each segment's
`status_detail` (and `adjustments`) says how: a clip with a display-rotation tag is turned upright;
a clip of another size is fitted into the dialogue's size with its aspect kept (scaled, then
letterboxed or pillarboxed); an odd frame size, which x264 with yuv420p cannot encode, is padded
by one pixel to even; a clip whose frame rate differs or varies is *resampled by timestamps* to
the dialogue's rate: segment frame j shows the source frame on screen at the middle of its
interval, so frames are dropped or repeated, the duration is kept and the audio is left as it is
(in sync, at its own speed). `source_frames` records, for every segment frame, the source frame
it shows; the CLIP and face stages index source frames through it, so they see exactly the
frames the rendered clip shows.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
from tqdm import tqdm

from ecem.clip_probe import clip_timeline, probe_clip
from ecem.dataset.dedup import Overlap, csv_overlap_frames, refine_overlap
from ecem.dataset.probe import USABLE_STATUSES
from ecem.faults import data_fault
from ecem.ffmpeg import FFmpegError, ffmpeg_url, run_ffmpeg
from ecem.media import iter_frames, read_frames
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


@dataclasses.dataclass(frozen=True)
class SegmentPlan:
    """What a clip's segment will hold: `source_frames[j]` is the source frame shown as segment
    frame j, at `fps` and `size` (the dialogue's format); `start_s` is where its audio starts in
    the source; `resampled` when frames are picked by timestamp (rates differ or vary);
    `geometry` the ffmpeg filter bringing an upright source frame to `size`; `notes` what was
    changed, for `status_detail`, and `adjustments` the same as keywords, for counting."""

    source_frames: tuple[int, ...]
    fps: float
    size: tuple[int, int]
    start_s: float
    resampled: bool
    geometry: str
    notes: tuple[str, ...]
    adjustments: tuple[str, ...]

    @property
    def n_frames(self) -> int:
        return len(self.source_frames)


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


def rate_text(fps: float) -> str:
    """A frame rate as the exact fraction ffmpeg should use (23.976… → 24000/1001)."""
    rate = Fraction(fps).limit_denominator(1001)
    return f"{rate.numerator}/{rate.denominator}"


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size a dialogue renders at: its own, padded up to even (x264 with yuv420p needs it)."""
    return size[0] + size[0] % 2, size[1] + size[1] % 2


def fit_geometry(src: tuple[int, int], dst: tuple[int, int]) -> tuple[str, str, str]:
    """(ffmpeg filter, note, adjustment) that put an upright `src` frame into a `dst` frame.

    The same size: nothing. At most one pixel short of `dst` each way (an odd size on an even
    canvas): padded at the right and bottom, every pixel kept. Otherwise scaled to fit with the
    aspect kept and centred on black bars, never squashed.
    """
    (w, h), (tw, th) = src, dst
    if (w, h) == (tw, th):
        return "", "", ""
    if 0 <= tw - w <= 1 and 0 <= th - h <= 1:
        return (f"pad={tw}:{th}:0:0:black", f"odd frame size {w}×{h} padded to {tw}×{th} (x264 with "
                f"yuv420p needs even sizes)", "padded_to_even")
    bars = "letterboxed" if w * th > h * tw else "pillarboxed" if w * th < h * tw else "same aspect"
    return (f"scale={tw}:{th}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
            f"pad={tw}:{th}:(ow-iw)/2:(oh-ih)/2:black",
            f"fitted {w}×{h} into {tw}×{th} (aspect kept, {bars})", "fitted")


def plan_segment(row: dict[str, Any], first_frame: int, fps: float, size: tuple[int, int]) -> SegmentPlan:
    """How clip `row` (a probed utterance) from `first_frame` on becomes a segment at the
    dialogue's rate `fps` and size `size` (even)."""
    notes, adjustments = [], []
    rotation = int(row["rotation"])
    if rotation:
        notes.append(f"turned upright (display matrix: rotated {rotation}°)")
        adjustments.append("rotated")
    geometry, note, adjustment = fit_geometry((int(row["width"]), int(row["height"])), size)
    if note:
        notes.append(note)
        adjustments.append(adjustment)
    src_fps, n_src = float(row["fps"]), int(row["n_frames"])
    variable = bool(row["variable_rate"])
    if not variable and abs(src_fps - fps) < 1e-3:
        return SegmentPlan(tuple(range(first_frame, n_src)), fps, size, first_frame / src_fps, False,
                           geometry, tuple(notes), tuple(adjustments))
    timeline = clip_timeline(row["video_path"])
    start = timeline.starts[first_frame]
    n_out = max(1, round((timeline.end_s - start) * fps))
    frames = tuple(timeline.frame_at(start + (j + 0.5) / fps) for j in range(n_out))
    kept = n_src - first_frame
    what = f"frame rate varies (mean {src_fps:.3f} fps)" if variable else f"{src_fps:.3f} fps"
    notes.append(f"{what}: resampled by timestamps to {fps:.3f} fps, {kept} → {n_out} frames "
                 f"({len(set(frames))} shown, {n_out - len(set(frames))} repeats), "
                 f"{timeline.end_s - start:.3f} s kept, audio untouched")
    adjustments.append("resampled")
    return SegmentPlan(frames, fps, size, start, True, geometry, tuple(notes), tuple(adjustments))


def _held_frames(src: str, source_frames: tuple[int, ...]) -> tuple[tuple[int, int], Iterator[bytes]]:
    """((width, height), raw upright RGB frames of `source_frames` in order): a repeated index
    repeats its frame, each source frame is decoded once, one frame is held at a time."""
    repeats = collections.Counter(source_frames)
    decoded = iter_frames(src, sorted(repeats))
    first = next(decoded, None)
    if first is None:
        raise FFmpegError(f"{src}: no frame of {sorted(repeats)[:3]}… decodes")

    def chunks() -> Iterator[bytes]:
        for i, array in itertools.chain([first], decoded):
            data = np.ascontiguousarray(array).tobytes()
            for _ in range(repeats[i]):
                yield data

    height, width = first[1].shape[:2]
    return (width, height), chunks()


def encode_segment(src: str, dst: Path, plan: SegmentPlan, has_audio: bool, render: dict[str, Any]) -> None:
    """Encode segment `plan` of `src` at `dst` in the dialogue's format (H.264 + AAC).

    Without resampling ffmpeg reads `src` itself (turning it upright by its display matrix, as
    it does by default) and trims the frames before the plan's first one. With resampling the
    planned frames are decoded here and streamed to ffmpeg as raw video at the dialogue's rate,
    so the segment holds exactly `plan.source_frames`. The audio starts at `plan.start_s` and is
    not time-stretched; a clip without audio gets a silent track, so every segment has the same
    streams.
    """
    frames = None
    video_filters = [plan.geometry] if plan.geometry else []
    if plan.resampled:
        (width, height), frames = _held_frames(src, plan.source_frames)
        args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                "-framerate", rate_text(plan.fps), "-i", "pipe:0", "-i", ffmpeg_url(src)]
        audio_input = 1
    else:
        args = ["-i", ffmpeg_url(src)]
        video_filters = [f"trim=start_frame={plan.source_frames[0]}", "setpts=PTS-STARTPTS", *video_filters]
        audio_input = 0
    if has_audio:
        audio_map = f"{audio_input}:a:0"
        afilter = ["-af", f"atrim=start={plan.start_s:.6f},asetpts=PTS-STARTPTS"]
    else:
        args += ["-f", "lavfi", "-t", f"{plan.n_frames / plan.fps:.6f}", "-i",
                 f"anullsrc=r={render['audio_rate']}:cl=mono"]
        audio_map, afilter = f"{audio_input + 1}:a:0", []
    args += [
        "-map", "0:v:0", "-map", audio_map, "-vf", ",".join([*video_filters, "setsar=1"]),
        *afilter, "-fps_mode", "passthrough",
        "-c:v", "libx264", "-preset", render["preset"], "-crf", str(render["crf"]),
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-ar", str(render["audio_rate"]),
        "-ac", "1", ffmpeg_url(dst),
    ]
    run_ffmpeg(args, frames=frames, output=dst)


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
    canvas = even_size(size)
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
            if est > 0 and (abs(float(prev["fps"]) - fps) >= 1e-3 or prev["variable_rate"]
                            or row["variable_rate"]):
                # Frame i of one clip is not frame i of the other in time: nothing is cut.
                overlap = Overlap(0, est, "fps_mismatch")
            elif est > 0:  # decode only when the times say the clips overlap
                need = est + int(dedup["search_frames"])
                overlap = refine_overlap(
                    _gray_frames(prev, need, True, size), _gray_frames(row, need + 1, False, size),
                    est, int(dedup["search_frames"]), float(dedup["max_distance"]),
                    float(dedup["tie_tolerance"]))
        seg = _Segment(row, overlap, seg_dir / f"dia{dia}_utt{uid}.mp4")
        try:
            seg.plan = plan_segment(row, overlap.frames, out_fps, canvas)
            seg.detail = "; ".join(seg.plan.notes)
            if seg.detail:
                log.info("%s/dia%d_utt%d: %s", split, dia, uid, seg.detail)
            encode_segment(row["video_path"], seg.path, seg.plan, bool(row["has_audio"]), render)
            got = probe_clip(seg.path).n_frames
            if got != seg.n_frames:
                raise FFmpegError(f"segment has {got} frames, expected {seg.n_frames}")
        except (FFmpegError, av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
            # a fault of this clip; a fault of the machine (EnvironmentFault) fails the job
            why = str(exc) if isinstance(exc, FFmpegError) else data_fault(exc, row["video_path"])
            seg.status, seg.detail = "render_failed", why
            failed[uid] = ("render_failed", f"render_failed: {why}")
            log.warning("%s/dia%d_utt%d: %s", split, dia, uid, why)
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
        "render_fps": out_fps, "render_width": canvas[0], "render_height": canvas[1],
        "source_frames": list(s.plan.source_frames) if s.plan else [],
        "adjustments": list(s.plan.adjustments) if s.plan else [],
        "segment_path": str(s.path) if s.status == "ok" else None,
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
