"""CLIP spatio-temporal video tokens (the vision input of FAME-Net, as in Video-ChatGPT).

For each sample (a dialogue prefix ending at the target utterance) we

1. sample `t = min(F, T)` frames uniformly over the prefix's F frames
   (:func:`uniform_frame_indices`, Video-ChatGPT's rule: the middle of `t` equal bins of
   `[0, F-1]`, bin edges rounded),
2. run a frozen CLIP vision tower on each frame and keep the patch tokens of one hidden layer
   (default ``-2``, the penultimate one; the CLS token is dropped): `(t, N, D)` with
   `N = (image_size / patch_size)²`,
3. pool them (:func:`pool_spatio_temporal`): the mean over patches gives `t` temporal tokens,
   zero rows are appended up to `T` when `t < T` (padding rule ``zeros_after``, the one
   Video-ChatGPT uses); the mean over the `t` real frames gives `N` spatial tokens;
   the result is `(T + N, D)` — 100 + 256 = 356 tokens at 224 px, 100 + 576 = 676 at 336 px.

**Linear cost.** Prefix samples of one dialogue share frames. In ``segments`` sampling mode the
uniform positions of every sample are mapped onto the source-clip frames of its deduplicated
utterance segments (`clips.parquet` → `segments.parquet`), and each distinct source frame is
decoded and encoded once for all samples that use it; per-frame patch tokens are streamed into
per-sample accumulators. Work grows with the frames of the dialogue's utterances, not with the
sum of prefix lengths. ``rendered_clip`` mode decodes each sample's rendered prefix clip instead
(exact Video-ChatGPT behaviour on the mp4 the dataset stage wrote; quadratic in dialogue length).
The two use the same frame positions; they differ only by the rendered clip's re-encoding.

Frames are resized as Video-ChatGPT does (``resize: squash``: nearest-neighbour to
`image_size²`, then CLIP's image processor, whose resize/crop are then no-ops) or with CLIP's own
processor alone (``resize: crop``: shortest edge to `image_size`, bicubic, centre crop).

Output: one Parquet row per sample — ``tokens`` (float16, little-endian, C order, as bytes),
``shape`` `[T+N, D]`, ``n_frames_sampled``, ``padding`` — with the model id, layer, image size
and layout in the file's `ecem` schema metadata. Read it back with :func:`load_tokens`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ecem.faults import data_fault
from ecem.features.encoder import VisionPatchEncoder
from ecem.features.frames import SamplePlan
from ecem.tokens import PADDING_NONE, PADDING_ZEROS_AFTER, TOKEN_DTYPE, TokenLayout

log = logging.getLogger(__name__)


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


_DONE = object()


def extract_tokens(plans: Sequence[SamplePlan], encoder: VisionPatchEncoder, batch_size: int,
                   decoder: str = "pyav", progress: bool = True,
                   stats: ExtractStats | None = None,
                   decode_workers: int = 1) -> Iterator[SampleTokens]:
    """Yield each sample's `(T + N, D)` float16 tokens; every distinct (source, frame) is decoded
    and encoded once.

    `decode_workers` threads decode and resize the sources (a few ahead of the model, never the
    whole shard); a packing thread takes their results in source order and cuts them into batches
    of `batch_size` (frames of consecutive utterances share a batch); the calling thread only
    runs the model and streams each frame's patch tokens into the samples that use it. A source
    that fails to decode marks the samples using it as failed (`stats.failed`); the others go on.
    Batches are the same on every run, whatever the workers' timing, so the output is too.
    """
    import torch
    from tqdm import tqdm

    stats = stats if stats is not None else ExtractStats()
    stats.samples += len(plans)
    t_start = time.perf_counter()
    users: dict[tuple[str, int], list[tuple[int, list[int]]]] = {}
    by_source: dict[str, set[int]] = {}
    order: list[str] = []  # sources in first-use order: a dialogue's samples complete together
    accs: dict[int, _Accumulator] = {}
    for i, plan in enumerate(plans):
        slots: dict[tuple[str, int], list[int]] = {}
        for slot, pick in enumerate(plan.picks):
            slots.setdefault(pick, []).append(slot)
        for pick, s in slots.items():
            users.setdefault(pick, []).append((i, s))
            if pick[0] not in by_source:
                by_source[pick[0]] = set()
                order.append(pick[0])
            by_source[pick[0]].add(pick[1])
        stats.frames_picked += len(plan.picks)
        accs[i] = _Accumulator(encoder.layout, len(plan.picks), len(slots))
    stats.sources += len(order)
    failed: set[int] = set()
    q: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()
    # Beside a model on the CPU the codec threads only large frames (see ecem.media.iter_frames);
    # a GPU leaves it every core.
    threaded_decode = True if encoder.device.startswith("cuda") else None

    def load(src: str) -> tuple[Any, str | None, float]:
        """(pixels, None, seconds) or (None, error, seconds): a decode failure of the source
        quarantines its samples; a fault of the machine (EnvironmentFault) fails the shard."""
        t0 = time.perf_counter()
        try:
            pixels = encoder.load(src, sorted(by_source[src]), decoder, threaded_decode)
        except Exception as exc:  # noqa: BLE001 - a data fault is reported per sample, the shard goes on
            return None, data_fault(exc, src), time.perf_counter() - t0
        return pixels, None, time.perf_counter() - t0

    def produce() -> None:
        keys: list[tuple[str, int]] = []
        chunks: list[Any] = []
        n = 0
        sources = iter(order)
        pending: collections.deque = collections.deque()

        def emit(k: int) -> None:
            nonlocal keys, chunks, n
            pix = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
            q.put(("batch", keys[:k], pix[:k]))
            keys, chunks, n = keys[k:], ([pix[k:]] if n > k else []), n - k

        def submit_next() -> None:
            src = next(sources, None)
            if src is not None:
                pending.append((src, pool.submit(load, src)))

        try:
            with ThreadPoolExecutor(max_workers=max(1, decode_workers),
                                    thread_name_prefix="clip-decode") as pool:
                for _ in range(2 * max(1, decode_workers)):  # bounded look-ahead
                    submit_next()
                while pending:
                    if stop.is_set():
                        for _, future in pending:
                            future.cancel()
                        return
                    src, future = pending.popleft()
                    submit_next()
                    idx = sorted(by_source[src])
                    pixels, error, seconds = future.result()
                    stats.decode_s += seconds  # summed over the workers
                    if error is not None:
                        q.put(("error", [(src, k) for k in idx], error))
                        continue
                    keys.extend((src, k) for k in idx)
                    chunks.append(pixels)
                    n += len(idx)
                    while n >= batch_size:
                        emit(batch_size)
            if n:
                emit(n)
            q.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put(exc)

    def deliver(keys: list[tuple[str, int]], tokens: np.ndarray | None,
                error: str | None = None) -> Iterator[SampleTokens]:
        if tokens is not None:  # once per frame, however many samples use it
            tokens = tokens.astype(np.float64)
            means = tokens.mean(axis=1)
        for j, key in enumerate(keys):
            for i, slots in users[key]:
                if i in failed:
                    continue
                if tokens is None:
                    failed.add(i)
                    stats.failed[plans[i].sample_id] = f"decode failed ({key[0]}): {error}"
                    accs.pop(i, None)
                    continue
                acc = accs[i]
                acc.add(slots, tokens[j], means[j])
                if acc.remaining == 0:
                    del accs[i]
                    stats.ok += 1
                    yield SampleTokens(plans[i], acc.result())

    thread = threading.Thread(target=produce, name="clip-pack", daemon=True)
    thread.start()
    bar = tqdm(total=len(users), unit="frame", desc="clip features", disable=not progress,
               mininterval=2.0)
    try:
        while True:
            item = q.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            kind, keys, payload = item
            if kind == "error":
                yield from deliver(keys, None, payload)
            else:
                t0 = time.perf_counter()
                tokens = encoder.encode(payload)
                stats.encode_s += time.perf_counter() - t0
                stats.frames_encoded += len(keys)
                yield from deliver(keys, tokens)
            bar.update(len(keys))
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)
        bar.close()
        stats.wall_s += time.perf_counter() - t_start
    for i in accs:  # only if a decoder returned fewer frames than asked without raising
        stats.failed[plans[i].sample_id] = "incomplete: frames missing after decoding"


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
