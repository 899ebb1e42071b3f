"""Video/audio primitives shared by every stage: the ffmpeg binary, probing, frame decoding.

ffmpeg comes from the `imageio-ffmpeg` wheel (no system install needed); probing and decoding
use PyAV, which links its own FFmpeg libraries. Both are real FFmpeg. Every reader opens clips
through :func:`open_media`, so a prefix clip may be an mp4 or an ffconcat playlist of its
segments (see :mod:`ecem.playlist`) and decodes to the same frames either way.

Paths reach FFmpeg through :func:`ffmpeg_url` and playlists through in-memory lists of ``file:``
URLs, never through a shell, so no character of a folder name — a quote, ``$()``, a backtick,
``:``, ``?``, ``#`` — is read as a protocol, a query or anything but the name.
Frames come out upright: a clip's display matrix (the rotation tag phones write) is applied as
the ffmpeg command line applies it. A failure of ffmpeg is an :class:`FFmpegError` (a fault of
the input) or, when the machine is at fault (full disk, I/O error, killed, no executable), an
:class:`ecem.faults.EnvironmentFault`.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import io
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from ecem.faults import EnvironmentFault, data_fault, environment_message, signal_cause
from ecem.playlist import concat_list, is_playlist, playlist_entries

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg (or named by IMAGEIO_FFMPEG_EXE)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_url(path: str | Path) -> str:
    """`path` as FFmpeg should open it. FFmpeg reads a name whose first part holds a colon as a
    protocol (``a:b/c.mp4`` names protocol ``a``); such a path becomes a ``file:`` URL, which
    FFmpeg's file protocol takes literally. Other paths stay as they are (and read so in
    FFmpeg's messages)."""
    text = os.fspath(path)
    return "file:" + text if ":" in text.split("/", 1)[0] else text


class FFmpegError(RuntimeError):
    """ffmpeg exited non-zero for a reason of its input; the message carries its stderr tail."""


def _ffmpeg_failure(returncode: int, stderr: bytes, output: str) -> Exception:
    """EnvironmentFault when the machine stopped ffmpeg, else FFmpegError (the input's fault)."""
    lines = stderr.decode(errors="replace").strip().splitlines()
    tail = " | ".join(lines[-5:])
    killed = signal_cause(returncode)
    if killed:
        return EnvironmentFault(f"ffmpeg {killed}", output, tail)
    cause = environment_message("\n".join(lines))
    if cause:  # ffmpeg's first line naming it says what it was doing
        return EnvironmentFault(cause, output, "ffmpeg: " + next(ln for ln in lines if cause in ln))
    return FFmpegError(f"ffmpeg failed ({returncode}): {tail}")


def run_ffmpeg(args: Sequence[str], input_bytes: bytes | None = None,
               frames: Iterable[bytes] | None = None, output: str | Path | None = None) -> None:
    """Run ffmpeg quietly with `args`, feeding its stdin `input_bytes` or the chunks of `frames`
    (raw video, streamed: memory holds one frame).

    `output` names the file ffmpeg writes (default: the last argument) for the message of an
    :class:`EnvironmentFault`, raised when the machine is at fault (no space, I/O error, killed
    by the system, no ffmpeg executable); any other failure raises FFmpegError.
    """
    fed = input_bytes is not None or frames is not None
    cmd = [ffmpeg_exe(), "-hide_banner", *([] if fed else ["-nostdin"]), "-loglevel", "error", "-y", *args]
    output = str(output if output is not None else args[-1]).removeprefix("file:")
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: ffmpeg never blocks on stderr
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if fed else subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)
        except OSError as exc:
            raise EnvironmentFault(f"ffmpeg cannot be run ({exc.strerror})", cmd[0]) from None
        try:
            if fed:
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):  # ffmpeg stopped reading: its exit
                    try:                                    # status says why
                        for chunk in ([input_bytes] if input_bytes is not None else frames or ()):
                            proc.stdin.write(chunk)
                    finally:
                        proc.stdin.close()
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if returncode != 0:
            err.seek(0)
            raise _ffmpeg_failure(returncode, err.read(), output)


def open_media(path: str | Path) -> av.container.InputContainer:
    """Open a clip or a prefix-clip playlist with PyAV (use as a context manager).

    A playlist is checked by :func:`playlist_entries` (it may name only relative files; a missing
    entry raises FileNotFoundError) and handed to the concat demuxer as a list in memory naming
    each segment by its absolute ``file:`` URL (:func:`ecem.playlist.concat_list`): FFmpeg would
    otherwise resolve the entries against the playlist's own path as a URL, where a ``?`` or
    ``#`` in a folder name starts a query or a fragment. ``safe=0`` allows the absolute entries.
    """
    if not is_playlist(path):
        return av.open(ffmpeg_url(path))
    entries = playlist_entries(path)
    for entry in entries:
        if not entry.is_file():
            raise FileNotFoundError(f"{path}: segment {entry} not found")
    return av.open(io.BytesIO(concat_list(entries).encode()), format="concat", options={"safe": "0"})


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


def frame_turns(frame: av.VideoFrame) -> int:
    """Quarter turns counter-clockwise that make `frame` upright (its display matrix)."""
    return round((frame.rotation or 0) / 90) % 4


def display_turns(path: str | Path) -> int:
    """Quarter turns counter-clockwise that make the clip's frames upright (its first frame's
    display matrix), for decoders that ignore it."""
    with open_media(path) as container:
        return frame_turns(next(container.decode(video=0)))


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


THREADED_DECODE_MIN_PIXELS = 640 * 360


def display_order(path: str | Path) -> dict[int, int] | None:
    """{packet pts: display index} of the first video stream, from demuxing alone (no decoding);
    None where a timestamp is missing or repeated, so the index cannot be told from it."""
    with open_media(path) as container:
        pts = [p.pts for p in container.demux(container.streams.video[0]) if p.size > 0]
    if any(t is None for t in pts) or len(set(pts)) != len(pts):
        return None
    return {t: i for i, t in enumerate(sorted(pts))}


def _decode_skipping(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                     order: dict[int, int], wanted: set[int]) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decode every packet except non-reference frames nobody wants.

    A non-reference frame is never used to predict another, so skipping it (``skip_frame=
    NONREF``, set per packet: FFmpeg reads it for each packet, frame threads included) leaves
    every other frame bit-identical; frames are indexed by their timestamp's display rank, as
    skipped frames leave gaps in the decoder's output.
    """
    ctx = stream.codec_context
    for packet in container.demux(stream):
        if packet.size:
            ctx.skip_frame = "DEFAULT" if order.get(packet.pts) in wanted else "NONREF"
        for frame in ctx.decode(packet):
            if frame.pts not in order:
                raise ValueError(f"decoded frame with timestamp {frame.pts} that no packet has")
            yield order[frame.pts], frame


def iter_frames(
    path: str | Path, indices: Iterable[int] | None = None, pixel_format: str = "rgb24",
    size: tuple[int, int] | None = None, threaded: bool | None = True,
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode `path` sequentially and yield `(index, uint8 array)` for the wanted frames (all, or
    the distinct `indices`), in increasing index order; decoding stops after the last one.

    Sequential decoding is exact (no seeking ambiguity) and fast for the short clips MELD has.
    With `indices`, non-reference frames that are not wanted are not decoded at all (see
    :func:`_decode_skipping`; identical frames, about half the decode CPU at 1280×720 with
    x264's B-frames when 4 frames a second are sampled).
    `pixel_format` is any PyAV format (``rgb24``, ``rgba``, ``gray``); frames are upright
    (:func:`upright_array`); `size` = (width, height) rescales with swscale. `threaded=False`
    keeps the codec on the calling thread; `None` lets the codec thread only frames of at least
    :data:`THREADED_DECODE_MIN_PIXELS`, where frame threading pays for itself (on 2 cores: 1.4×
    faster at 1280×720, 10% slower at 320×240 next to a model).
    """
    wanted = None if indices is None else set(int(i) for i in indices)
    last = max(wanted) if wanted else None
    if wanted is not None and last is None:
        return
    order = None if wanted is None else display_order(path)
    with open_media(path) as container:
        stream = container.streams.video[0]
        if threaded is None:
            threaded = stream.codec_context.width * stream.codec_context.height >= THREADED_DECODE_MIN_PIXELS
        stream.thread_type = "AUTO" if threaded else "NONE"
        frames = (enumerate(container.decode(stream)) if order is None or wanted is None
                  else _decode_skipping(container, stream, order, wanted))
        for i, frame in frames:
            if wanted is None or i in wanted:
                yield i, upright_array(frame, pixel_format, size)
            if last is not None and i >= last:
                break


def upright_array(frame: av.VideoFrame, pixel_format: str = "rgb24",
                  size: tuple[int, int] | None = None) -> np.ndarray:
    """A decoded frame as a uint8 array, turned upright by its display matrix (as the ffmpeg
    command line shows it) and, with `size` = (width, height) of the upright frame, rescaled."""
    turns = frame_turns(frame)
    if size is not None:
        width, height = size if turns % 2 == 0 else (size[1], size[0])
        array = frame.reformat(width=width, height=height, format=pixel_format).to_ndarray()
    else:
        array = frame.to_ndarray(format=pixel_format)
    return np.rot90(array, turns) if turns else array


def read_frames(
    path: str | Path, indices: Sequence[int] | None = None, size: tuple[int, int] | None = None,
    gray: bool = False, threaded: bool | None = True,
) -> np.ndarray:
    """Decode frames (all, or the given indices in any order) as uint8 arrays (N, H, W, 3|1).

    See :func:`iter_frames`; an index beyond the clip raises IndexError.
    """
    fmt = "gray" if gray else "rgb24"
    out = {i: (a if a.ndim == 3 else a[..., None])
           for i, a in iter_frames(path, indices, fmt, size, threaded)}
    order = range(len(out)) if indices is None else [int(i) for i in indices]
    missing = [i for i in order if i not in out]
    if missing:
        raise IndexError(f"{path}: frames {missing[:5]} beyond the clip's {len(out)} decoded frames")
    return np.stack([out[i] for i in order]) if out else np.zeros((0, 0, 0, 3), np.uint8)


AUDIO_SAMPLE_RATE = 16000  # what Whisper and the other speech encoders take


def load_audio(path: str | Path, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of `path` to mono float32 in [-1, 1) at `sample_rate` (PyAV).

    A file without an audio stream gives an empty array (callers treat that as silence)."""
    with open_media(path) as container:
        if not container.streams.audio:
            return np.zeros(0, dtype=np.float32)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        parts: list[np.ndarray] = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            parts.append(out.to_ndarray().reshape(-1))
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32) / 32768.0
