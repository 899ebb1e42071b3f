"""Packing decoded frames into the vision model's batches.

The video stage decodes its sources (utterance clips) one after another, each into the frames
its samples need; the model wants batches of a fixed size. :func:`pack_batches` cuts the stream
of decoded sources into batches of `batch_size` frames in source order (frames of consecutive
sources share a batch; the last batch holds the remainder) and passes a source that failed to
decode on at once, so its samples are failed before the frames already waiting are encoded. The
batches depend only on the sources and `batch_size`, never on timing: the same frames meet in the
same batch on every run, so the model's floating-point results are the same too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

K = TypeVar("K")  # what names a frame: (source, frame index) in the video stage
P = TypeVar("P")  # a stack of frames that slices along its first axis (a torch tensor)


@dataclasses.dataclass(frozen=True)
class Decoded(Generic[K, P]):
    """One source's frames (`pixels[i]` is frame `keys[i]`), or why it could not be decoded."""

    keys: list[K]
    pixels: P | None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Batch(Generic[K, P]):
    """Frames for one model call: `pixels[i]` is frame `keys[i]`."""

    keys: list[K]
    pixels: P


@dataclasses.dataclass(frozen=True)
class Failed(Generic[K]):
    """The frames of a source that failed to decode, and the reason."""

    keys: list[K]
    error: str


def pack_batches(sources: Iterable[Decoded[K, P]], batch_size: int,
                 concat: Callable[[Sequence[P]], P]) -> Iterator[Batch[K, P] | Failed[K]]:
    """Cut decoded sources into batches of `batch_size` frames, in order (see the module doc).

    `concat` joins stacks of frames (`torch.cat`); it runs only where a batch spans sources, and a
    batch within one source is a slice of that source's stack.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    keys: list[K] = []
    chunks: list[Any] = []  # stacks of frames not yet batched; their lengths sum to len(keys)
    for source in sources:
        if source.error is not None:
            yield Failed(source.keys, source.error)
            continue
        keys.extend(source.keys)
        chunks.append(source.pixels)
        while len(keys) >= batch_size:
            batch, keys, chunks = _cut(keys, chunks, batch_size, concat)
            yield batch
    if keys:
        yield _cut(keys, chunks, len(keys), concat)[0]


def _cut(keys: list[K], chunks: list[Any], size: int,
         concat: Callable[[Sequence[P]], P]) -> tuple[Batch[K, P], list[K], list[Any]]:
    """The first `size` frames as a batch, and the keys and stacks left after them."""
    pixels = concat(chunks) if len(chunks) > 1 else chunks[0]
    rest = [pixels[size:]] if len(keys) > size else []
    return Batch(keys[:size], pixels[:size]), keys[size:], rest
