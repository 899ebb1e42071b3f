"""Video/audio primitives shared by every stage: the ffmpeg binary, probing, frame decoding.

ffmpeg comes from the `imageio-ffmpeg` wheel (no system install needed); probing and decoding
use PyAV, which links its own FFmpeg libraries. Both are real FFmpeg. Every reader opens clips
through :func:`open_media`, so a prefix clip may be an mp4 or an ffconcat playlist of its
segments (see :mod:`ecem.playlist`) and decodes to the same frames either way.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from ecem.playlist import is_playlist, playlist_entries

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class FFmpegError(RuntimeError):
    """ffmpeg exited non-zero; the message carries the tail of its stderr."""


def run_ffmpeg(args: Sequence[str], input_bytes: bytes | None = None) -> None:
    """Run ffmpeg quietly with `args`; raise FFmpegError with its stderr tail on failure."""
    stdin_flag = ["-nostdin"] if input_bytes is None else []
    cmd = [ffmpeg_exe(), "-hide_banner", *stdin_flag, "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, input=input_bytes, capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise FFmpegError(f"ffmpeg failed ({proc.returncode}): {' | '.join(tail)}")


def open_media(path: str | Path) -> av.container.InputContainer:
    """Open a clip or a prefix-clip playlist with PyAV (use as a context manager).

    A playlist is opened with the concat demuxer and ``safe=0`` (its entries climb to the
    segments folder with ``..``, which safe mode refuses) after :func:`playlist_entries` has
    checked it names only relative files; a missing entry raises FileNotFoundError.
    """
    if not is_playlist(path):
        return av.open(str(path))
    for entry in playlist_entries(path):
        if not entry.is_file():
            raise FileNotFoundError(f"{path}: segment {entry} not found")
    return av.open(str(path), format="concat", options={"safe": "0"})


@dataclasses.dataclass(frozen=True)
class ClipProbe:
    """What a clip holds. `status` is `ok | missing | corrupt | no_audio`."""

    status: str
    status_detail: str = ""
    fps: float = float("nan")
    n_frames: int = 0
    duration_s: float = float("nan")
    width: int = 0
    height: int = 0
    has_audio: bool = False
    audio_peak_dbfs: float = float("-inf")


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
    `silence_dbfs` everywhere is `no_audio` (its video is still usable).
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
            n_frames = sum(1 for p in container.demux(vstream) if p.size > 0)
            width, height = vstream.codec_context.width, vstream.codec_context.height
        if indexed and n_frames < indexed:
            # A cut-off file whose index sits at the front (faststart) lists frames it lacks.
            return ClipProbe("corrupt", f"truncated: {n_frames} of the {indexed} frames its index "
                                        f"lists are in the file")
        with open_media(path) as container:
            next(container.decode(video=0))  # raises if no frame decodes
        has_audio = False
        peak = float("-inf")
        with open_media(path) as container:
            if container.streams.audio:
                has_audio = True
                peak = _peak_dbfs(container)
    except (av.error.FFmpegError, StopIteration, ValueError, OSError) as exc:
        return ClipProbe("corrupt", f"{type(exc).__name__}: {exc}")
    if n_frames == 0 or fps <= 0:
        return ClipProbe("corrupt", f"no video frames (frames={n_frames}, fps={fps})")
    duration = n_frames / fps
    common = dict(fps=fps, n_frames=n_frames, duration_s=duration, width=width, height=height,
                  has_audio=has_audio, audio_peak_dbfs=peak)
    if not has_audio:
        return ClipProbe("no_audio", "no audio stream", **common)
    if peak < silence_dbfs:
        return ClipProbe("no_audio", f"audio is silent (peak {peak:.1f} dBFS < {silence_dbfs} dBFS)", **common)
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
    `pixel_format` is any PyAV format (``rgb24``, ``rgba``, ``gray``); `size` = (width, height)
    rescales with swscale. `threaded=False` keeps the codec on the calling thread; `None` lets the
    codec thread only frames of at least :data:`THREADED_DECODE_MIN_PIXELS`, where frame threading
    pays for itself (on 2 cores: 1.4× faster at 1280×720, 10% slower at 320×240 next to a model).
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
                if size is not None:
                    frame = frame.reformat(width=size[0], height=size[1], format=pixel_format)
                    yield i, frame.to_ndarray()
                else:
                    yield i, frame.to_ndarray(format=pixel_format)
            if last is not None and i >= last:
                break


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
