"""One segment: how a usable clip, from its first frame that does not repeat the previous clip
on, becomes a segment in its dialogue's format (`plan_segment`), and its encoding
(`encode_segment`). :mod:`ecem.dataset.render` cuts the segments and joins them into prefix clips.

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
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ecem.clip_probe import clip_timeline
from ecem.ffmpeg import FFmpegError, ffmpeg_url, run_ffmpeg
from ecem.media import iter_frames


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
