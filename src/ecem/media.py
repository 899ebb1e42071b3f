"""Opening and decoding clips with PyAV (which links its own FFmpeg libraries): frames come out
upright and, on request, only the ones asked for.

Every reader opens clips through :func:`open_media`, so a prefix clip may be an mp4 or an
ffconcat playlist of its segments (see :mod:`ecem.playlist`) and decodes to the same frames
either way. Paths reach FFmpeg through :func:`ecem.ffmpeg.ffmpeg_url` and playlists through
in-memory lists of ``file:`` URLs, so no character of a folder name is read as a protocol, a
query or anything but the name. A clip's display matrix (the rotation tag phones write) is
applied as the ffmpeg command line applies it. Probing lives in :mod:`ecem.clip_probe`, audio
in :mod:`ecem.audio_decode`, the ffmpeg binary in :mod:`ecem.ffmpeg`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import av
import numpy as np

from ecem.ffmpeg import ffmpeg_url
from ecem.playlist import concat_list, is_playlist, playlist_entries


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


def frame_turns(frame: av.VideoFrame) -> int:
    """Quarter turns counter-clockwise that make `frame` upright (its display matrix)."""
    return round((frame.rotation or 0) / 90) % 4


def display_turns(path: str | Path) -> int:
    """Quarter turns counter-clockwise that make the clip's frames upright (its first frame's
    display matrix), for decoders that ignore it."""
    with open_media(path) as container:
        return frame_turns(next(container.decode(video=0)))


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


