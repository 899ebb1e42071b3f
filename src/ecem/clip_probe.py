"""What a clip holds, found by demuxing and a first decoded frame: its status (ok, missing,
corrupt, no audio), frame count, rate, upright size, audio peak, and when its frames are shown.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from ecem.faults import data_fault
from ecem.media import frame_turns, open_media


@dataclasses.dataclass(frozen=True)
class Timeline:
    """When a clip's frames are shown: `starts[i]` (seconds from the first frame, display order)
    and `end_s`, when the last frame ends (its start plus its duration)."""

    starts: tuple[float, ...]
    end_s: float

    @property
    def variable_rate(self) -> bool:
        """Whether treating frame i as shown at ``i × mean interval`` would misplace some frame by
        more than half a frame: the clip's rate varies (dropped or held frames, phone
        recordings). Timestamp jitter of a tick or two does not count."""
        n = len(self.starts)
        if n < 3:
            return False
        step = self.starts[-1] / (n - 1)
        return max(abs(t - i * step) for i, t in enumerate(self.starts)) > step / 2

    def frame_at(self, t: float) -> int:
        """Index of the frame on screen at time `t` (the last one starting at or before it)."""
        return max(0, bisect.bisect_right(self.starts, t + 1e-9) - 1)


def clip_timeline(path: str | Path) -> Timeline:
    """The presentation times of the first video stream's frames, from demuxing alone."""
    with open_media(path) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.duration) for p in container.demux(stream) if p.size > 0]
        tb = float(stream.time_base)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
    return _timeline(packets, tb, fps)


def _timeline(packets: Sequence[tuple[int | None, int | None]], tb: float, fps: float) -> Timeline:
    if not packets:
        return Timeline((), 0.0)
    if any(pts is None for pts, _ in packets) or fps <= 0:  # no timestamps: constant rate
        step = 1.0 / fps if fps > 0 else 0.0
        return Timeline(tuple(i * step for i in range(len(packets))), len(packets) * step)
    ordered = sorted(packets)
    first = ordered[0][0]
    starts = tuple((pts - first) * tb for pts, _ in ordered)
    gaps = np.diff(starts)
    last = (ordered[-1][1] or 0) * tb or (float(np.median(gaps)) if len(gaps) else 1.0 / fps)
    return Timeline(starts, starts[-1] + last)


@dataclasses.dataclass(frozen=True)
class ClipProbe:
    """What a clip holds. `status` is `ok | missing | corrupt | no_audio`.

    `width` × `height` is the upright size (after `rotation`, the display matrix's turn in
    degrees counter-clockwise, as FFmpeg reports it); `variable_rate` clips have `fps` = their
    mean rate and `duration_s` from their timestamps (see :class:`Timeline`).
    """

    status: str
    status_detail: str = ""
    fps: float = float("nan")
    n_frames: int = 0
    duration_s: float = float("nan")
    width: int = 0
    height: int = 0
    has_audio: bool = False
    audio_peak_dbfs: float = float("-inf")
    rotation: int = 0
    variable_rate: bool = False


def _peak_dbfs(container: av.container.InputContainer) -> float:
    peak = 0.0
    for frame in container.decode(audio=0):
        arr = frame.to_ndarray()
        if arr.size:
            if np.issubdtype(arr.dtype, np.integer):
                value = float(np.abs(arr).max()) / float(np.iinfo(arr.dtype).max)
            else:
                value = float(np.abs(arr).max())
            peak = max(peak, value)
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def probe_clip(path: str | Path, silence_dbfs: float = -60.0) -> ClipProbe:
    """Probe a clip: count video packets exactly, decode the first frame, measure the audio peak.

    A clip whose file is absent is `missing`; one FFmpeg cannot open, that has no video stream
    or no decodable frame is `corrupt`; one with no audio stream or audio quieter than
    `silence_dbfs` everywhere is `no_audio` (its video is still usable). A fault of the machine
    while reading (I/O error, permission, memory) raises EnvironmentFault instead.
    """
    path = Path(path)
    if not path.exists():
        return ClipProbe("missing", f"file not found: {path}")
    if path.stat().st_size == 0:
        return ClipProbe("corrupt", "file is empty")
    try:
        with open_media(path) as container:
            if not container.streams.video:
                return ClipProbe("corrupt", "no video stream")
            vstream = container.streams.video[0]
            fps = float(vstream.average_rate or vstream.guessed_rate or 0)
            indexed = int(vstream.frames or 0)  # what the container's index promises
            packets = [(p.pts, p.duration) for p in container.demux(vstream) if p.size > 0]
            timeline = _timeline(packets, float(vstream.time_base), fps)
            width, height = vstream.codec_context.width, vstream.codec_context.height
        n_frames = len(packets)
        if indexed and n_frames < indexed:
            # A cut-off file whose index sits at the front (faststart) lists frames it lacks.
            return ClipProbe("corrupt", f"truncated: {n_frames} of the {indexed} frames its index "
                                        f"lists are in the file")
        with open_media(path) as container:
            turns = frame_turns(next(container.decode(video=0)))  # raises if no frame decodes
        has_audio = False
        peak = float("-inf")
        with open_media(path) as container:
            if container.streams.audio:
                has_audio = True
                peak = _peak_dbfs(container)
    except (av.error.FFmpegError, StopIteration, ValueError, OSError, MemoryError) as exc:
        return ClipProbe("corrupt", data_fault(exc, path))
    if n_frames == 0 or fps <= 0:
        return ClipProbe("corrupt", f"no video frames (frames={n_frames}, fps={fps})")
    duration = n_frames / fps
    if timeline.variable_rate:
        duration, fps = timeline.end_s, n_frames / timeline.end_s
    if turns % 2:
        width, height = height, width
    common = dict(fps=fps, n_frames=n_frames, duration_s=duration, width=width, height=height,
                  has_audio=has_audio, audio_peak_dbfs=peak, rotation=90 * turns,
                  variable_rate=timeline.variable_rate)
    if not has_audio:
        return ClipProbe("no_audio", "no audio stream", **common)
    if peak < silence_dbfs:
        return ClipProbe("no_audio", f"audio is silent (peak {peak:.1f} dBFS < {silence_dbfs} dBFS)",
                         **common)
    return ClipProbe("ok", "", **common)
