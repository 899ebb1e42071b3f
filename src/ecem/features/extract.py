"""Video tokens (the vision input of FAME-Net, as in Video-ChatGPT): from the samples' frame plans
to each sample's `(T + N, D)` float16 token matrix.

For each sample (a dialogue prefix ending at the target utterance)

1. `t = min(F, T)` frames are picked uniformly over the prefix's F frames
   (:mod:`ecem.features.frames`, Video-ChatGPT's rule: the middle of `t` equal bins of
   `[0, F-1]`, bin edges rounded),
2. a frozen ViT (CLIP's vision tower, or DINOv2: :class:`~ecem.features.encoder.VisionPatchEncoder`)
   gives each frame the patch tokens of one hidden layer (default ``-2``, the penultimate one; CLS
   and register tokens dropped): `(t, N, D)` with `N = (image_size / patch_size)²`,
3. they are pooled as :func:`~ecem.features.encoder.pool_spatio_temporal` defines: the mean over
   patches gives `t` temporal tokens, zero rows are appended up to `T` when `t < T` (padding rule
   ``zeros_after``, the one Video-ChatGPT uses); the mean over the `t` real frames gives `N`
   spatial tokens; the result is `(T + N, D)` — 100 + 256 = 356 tokens at 224 px, 100 + 576 = 676
   at 336 px (:mod:`ecem.features.video`, the video-token contract).

**Linear cost.** Prefix samples of one dialogue share frames. In ``segments`` sampling mode the
uniform positions of every sample are mapped onto the source-clip frames of its deduplicated
utterance segments (`clips.parquet` → `segments.parquet`), and each distinct source frame is
decoded and encoded once for all samples that use it; per-frame patch tokens are streamed into
per-sample accumulators. Work grows with the frames of the dialogue's utterances, not with the
sum of prefix lengths. ``rendered_clip`` mode decodes each sample's rendered prefix clip instead
(exact Video-ChatGPT behaviour on the mp4 the dataset stage wrote; quadratic in dialogue length).
The two use the same frame positions; they differ only by the rendered clip's re-encoding.

Frames are resized as Video-ChatGPT does (``resize: squash``: nearest-neighbour to
`image_size²`; the model's own normalisation is folded into its patch embedding) or by the
model's own image processor (``resize: crop``: shortest edge to `image_size`, centre crop).
:func:`feature_row` makes a sample's row of the video token file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ecem.faults import data_fault
from ecem.features.batching import Decoded, Failed, pack_batches
from ecem.features.encoder import VisionPatchEncoder
from ecem.features.frames import SamplePlan
from ecem.features.video import TokenLayout
from ecem.prefetch import map_ahead, prefetch
from ecem.tokens import PADDING_NONE, PADDING_ZEROS_AFTER, TOKEN_DTYPE


@dataclasses.dataclass
class SampleTokens:
    plan: SamplePlan
    tokens: np.ndarray  # (T + N, D) float16


@dataclasses.dataclass
class ExtractStats:
    samples: int = 0
    ok: int = 0
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    sources: int = 0
    frames_picked: int = 0  # sum over samples of sampled frames
    frames_encoded: int = 0  # distinct frames run through the model
    decode_s: float = 0.0  # time spent decoding + resizing, summed over the decode workers
    encode_s: float = 0.0  # time spent in the model
    wall_s: float = 0.0


class _Accumulator:
    """Streams one sample's per-frame patch tokens into its temporal and spatial tokens.

    Arrays are allocated on the first frame, so only samples whose frames are in flight (about
    one dialogue's) hold memory, however many samples a shard has.
    """

    def __init__(self, layout: TokenLayout, n_picked: int, n_distinct: int) -> None:
        self.layout = layout
        self.temporal: np.ndarray | None = None
        self.spatial: np.ndarray | None = None
        self.n_picked = n_picked
        self.remaining = n_distinct

    def add(self, slots: Sequence[int], feats: np.ndarray, mean: np.ndarray) -> None:
        """One frame's float64 patch tokens `feats` (N, D) and their mean over patches (D,),
        used at the temporal `slots` of this sample (more than one when t > the clip's frames)."""
        if self.temporal is None or self.spatial is None:
            self.temporal = np.zeros((self.layout.num_frames, feats.shape[1]), np.float64)
            self.spatial = np.zeros(feats.shape, np.float64)
        self.temporal[list(slots)] = mean
        if len(slots) == 1:
            self.spatial += feats
        else:
            self.spatial += feats * len(slots)
        self.remaining -= 1

    def result(self) -> np.ndarray:
        assert self.temporal is not None and self.spatial is not None
        out = np.concatenate([self.temporal, self.spatial / self.n_picked])
        return out.astype(TOKEN_DTYPE)


FrameKey = tuple[str, int]  # (source video, frame index in it)


class _Assembler:
    """Routes each encoded frame to the samples that use it and hands out each sample it completes.

    Built from the plans: `frames` holds each source's distinct frames, sorted, with the sources in
    first-use order (so a dialogue's samples complete together), and `users` each frame's samples
    with the temporal slots it fills in them. A failed sample's reason goes into `failed`.
    """

    def __init__(self, plans: Sequence[SamplePlan], layout: TokenLayout, failed: dict[str, str]) -> None:
        self.plans = plans
        self.failed = failed
        self.users: dict[FrameKey, list[tuple[int, list[int]]]] = {}
        self.pending: dict[int, _Accumulator] = {}  # samples neither complete nor failed
        frames: dict[str, set[int]] = {}
        for i, plan in enumerate(plans):
            slots: dict[FrameKey, list[int]] = {}
            for slot, pick in enumerate(plan.picks):
                slots.setdefault(pick, []).append(slot)
            for pick, used_at in slots.items():
                self.users.setdefault(pick, []).append((i, used_at))
                frames.setdefault(pick[0], set()).add(pick[1])
            self.pending[i] = _Accumulator(layout, len(plan.picks), len(slots))
        self.frames = {source: sorted(indices) for source, indices in frames.items()}

    def add(self, keys: Sequence[FrameKey], patch_tokens: np.ndarray) -> Iterator[SampleTokens]:
        """Stream the frames' patch tokens `(B, N, D)` into their samples; yield those completed."""
        tokens = patch_tokens.astype(np.float64)
        means = tokens.mean(axis=1)  # once per frame, however many samples use it
        for j, key in enumerate(keys):
            for i, slots in self.users[key]:
                acc = self.pending.get(i)
                if acc is None:  # failed by another of its sources
                    continue
                acc.add(slots, tokens[j], means[j])
                if acc.remaining == 0:
                    del self.pending[i]
                    yield SampleTokens(self.plans[i], acc.result())

    def fail(self, keys: Sequence[FrameKey], error: str) -> None:
        """Fail the samples that use the frames `keys` of a source that did not decode."""
        for source, frame in keys:
            for i, _ in self.users[(source, frame)]:
                if self.pending.pop(i, None) is not None:
                    self.failed[self.plans[i].sample_id] = f"decode failed ({source}): {error}"

    def fail_incomplete(self) -> None:
        """Fail the samples still waiting for frames once every batch is in (only if a decoder
        returned fewer frames than asked without raising)."""
        for i in self.pending:
            self.failed[self.plans[i].sample_id] = "incomplete: frames missing after decoding"


def _decode_source(source: str, encoder: VisionPatchEncoder, frames: Mapping[str, list[int]],
                   decoder: str, seconds: list[float]) -> Decoded[FrameKey, Any]:
    """A source's frames as the encoder takes them, or the reason it did not decode: a fault of
    the data fails the source's samples only; a fault of the machine (EnvironmentFault) raises and
    fails the shard. Appends the seconds spent to `seconds`."""
    # Beside a model on the CPU the codec threads only large frames (see ecem.media.iter_frames);
    # a GPU leaves it every core.
    threaded = True if encoder.device.startswith("cuda") else None
    keys = [(source, k) for k in frames[source]]
    t0 = time.perf_counter()
    try:
        return Decoded(keys, encoder.load(source, frames[source], decoder, threaded))
    except Exception as exc:  # noqa: BLE001 - a data fault is reported per sample, the shard goes on
        return Decoded(keys, None, data_fault(exc, source))
    finally:
        seconds.append(time.perf_counter() - t0)


def extract_tokens(plans: Sequence[SamplePlan], encoder: VisionPatchEncoder, batch_size: int,
                   decoder: str = "pyav", progress: bool = True,
                   stats: ExtractStats | None = None,
                   decode_workers: int = 1) -> Iterator[SampleTokens]:
    """Yield each sample's `(T + N, D)` float16 tokens; every distinct (source, frame) is decoded
    and encoded once.

    Three steps overlap: `decode_workers` threads decode and resize the sources a few ahead of the
    model (:func:`ecem.prefetch.map_ahead`, results in source order); a packing thread cuts them
    into batches of `batch_size` frames (:func:`ecem.features.batching.pack_batches`, run ahead by
    :func:`ecem.prefetch.prefetch`); the calling thread only runs the model and streams each
    frame's patch tokens into the samples that use it. A source that fails to decode fails the
    samples using it (`stats.failed`); the others go on. Batches are the same on every run,
    whatever the threads' timing, so the output is too.
    """
    import torch
    from tqdm import tqdm

    stats = stats if stats is not None else ExtractStats()
    t_start = time.perf_counter()
    assembler = _Assembler(plans, encoder.layout, stats.failed)
    stats.samples += len(plans)
    stats.frames_picked += sum(len(plan.picks) for plan in plans)
    stats.sources += len(assembler.frames)
    decode_seconds: list[float] = []  # one entry per source, appended by the decode threads
    decode = functools.partial(_decode_source, encoder=encoder, frames=assembler.frames,
                               decoder=decoder, seconds=decode_seconds)
    batches = prefetch(pack_batches(map_ahead(decode, list(assembler.frames), decode_workers, "video-decode"),
                                    batch_size, torch.cat), depth=3, name="video-pack")
    bar = tqdm(total=len(assembler.users), unit="frame", desc="video tokens", disable=not progress,
               mininterval=2.0)
    try:
        with contextlib.closing(batches):  # on an early stop: the threads end before we go on
            for batch in batches:
                if isinstance(batch, Failed):
                    assembler.fail(batch.keys, batch.error)
                else:
                    t0 = time.perf_counter()
                    patch_tokens = encoder.encode(batch.pixels)
                    stats.encode_s += time.perf_counter() - t0
                    stats.frames_encoded += len(batch.keys)
                    for item in assembler.add(batch.keys, patch_tokens):
                        stats.ok += 1
                        yield item
                bar.update(len(batch.keys))
    finally:
        bar.close()
        stats.decode_s += sum(decode_seconds)  # the decode threads have ended here
        stats.wall_s += time.perf_counter() - t_start
    assembler.fail_incomplete()


def feature_row(item: SampleTokens, num_frames: int) -> dict[str, Any]:
    plan, tokens = item.plan, item.tokens
    t = len(plan.picks)
    return {"sample_id": plan.sample_id, "meld_split": plan.meld_split,
            "dialogue_id": plan.dialogue_id, "utterance_id": plan.utterance_id,
            "tokens": tokens.astype(TOKEN_DTYPE, copy=False).tobytes(order="C"),
            "shape": list(tokens.shape), "n_frames_clip": plan.n_frames_clip,
            "n_frames_sampled": t,
            "padding": PADDING_NONE if t >= num_frames else PADDING_ZEROS_AFTER,
            "frame_positions": list(plan.positions)}
