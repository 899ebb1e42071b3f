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

import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecem.artifacts import METADATA_KEY, atomic_path

log = logging.getLogger(__name__)

STAGE = "features/clip"
TOKEN_DTYPE = np.dtype("<f2")  # float16, little-endian, the stored token type
PADDING_NONE = "none"
PADDING_ZEROS_AFTER = "zeros_after"
PADDING_RULE = (
    "when a clip has t < T frames, all t frames are used once and the T - t missing temporal "
    "tokens are zero rows appended after the real ones; spatial tokens average the t real frames"
)
POOLING_RULE = (
    "temporal token i = mean over patches of frame i; spatial token j = mean over frames of "
    "patch j; tokens = concat(temporal (T), spatial (N)); hidden layer patch tokens, CLS dropped"
)
MODEL_MARKER = "ecem_model.json"  # written beside tiny random models: {"random_weights": true, ...}


# ---------------------------------------------------------------------------------------- layout
@dataclasses.dataclass(frozen=True)
class TokenLayout:
    """Shape of one sample's token matrix: `num_frames` temporal + `num_patches` spatial rows.

    The one place the layout is defined; FAME-Net reads it from here (or from a feature file's
    metadata with :func:`read_layout`).
    """

    num_frames: int  # T: temporal tokens (one per sampled frame, zero-padded)
    num_patches: int  # N: spatial tokens (one per image patch)
    hidden_size: int | None = None  # D: token width (1024 for ViT-L/14)

    @property
    def total(self) -> int:
        """T + N, the number of tokens per sample."""
        return self.num_frames + self.num_patches

    @property
    def shape(self) -> tuple[int, int]:
        if self.hidden_size is None:
            raise ValueError("layout has no hidden_size")
        return (self.total, self.hidden_size)

    @classmethod
    def for_image(cls, image_size: int, patch_size: int, num_frames: int,
                  hidden_size: int | None = None) -> TokenLayout:
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        return cls(num_frames, (image_size // patch_size) ** 2, hidden_size)

    def as_dict(self) -> dict[str, int | None]:
        return {"num_frames": self.num_frames, "num_patches": self.num_patches,
                "hidden_size": self.hidden_size, "total": self.total}


# Video-ChatGPT / LLaVA with CLIP ViT-L/14: 100 frames, 16×16 patches at 224 px, D = 1024.
PAPER_LAYOUT = TokenLayout(num_frames=100, num_patches=256, hidden_size=1024)
PAPER_LAYOUT_336 = TokenLayout(num_frames=100, num_patches=576, hidden_size=1024)


# -------------------------------------------------------------------------------------- sampling
def uniform_frame_indices(n_frames: int, num_frames: int) -> list[int]:
    """Video-ChatGPT's uniform sampling of `min(n_frames, num_frames)` frame indices.

    `[0, n_frames - 1]` is cut into `t` equal bins; each bin's edges are rounded (half to even,
    as NumPy rounds) and the floor-mean of the two edges is taken. With `n_frames <= num_frames`
    consecutive bins can round onto the same frame, so a frame may repeat and another be skipped;
    that is the reference behaviour and is kept.
    """
    if n_frames <= 0:
        return []
    t = min(int(n_frames), int(num_frames))
    seg = float(n_frames - 1) / t
    out = []
    for i in range(t):
        start = int(np.round(seg * i))
        end = int(np.round(seg * (i + 1)))
        out.append((start + end) // 2)
    return out


def pool_spatio_temporal(patch_tokens: np.ndarray, num_frames: int) -> np.ndarray:
    """Reference pooling of `(t, N, D)` patch tokens into `(num_frames + N, D)` float32.

    Temporal tokens: mean over patches per frame, zero rows appended up to `num_frames`.
    Spatial tokens: mean over the `t` frames per patch.
    """
    feats = np.asarray(patch_tokens, dtype=np.float64)
    if feats.ndim != 3 or feats.shape[0] == 0:
        raise ValueError(f"expected (t>0, N, D) patch tokens, got shape {feats.shape}")
    t, _, d = feats.shape
    if t > num_frames:
        raise ValueError(f"{t} frames exceed num_frames={num_frames}")
    temporal = np.zeros((num_frames, d), np.float64)
    temporal[:t] = feats.mean(axis=1)
    spatial = feats.mean(axis=0)
    return np.concatenate([temporal, spatial]).astype(np.float32)


# ----------------------------------------------------------------------------------------- plans
@dataclasses.dataclass
class SamplePlan:
    """Which frames one sample needs: `picks[i]` = (source video, frame index in it)."""

    sample_id: str
    meld_split: str
    dialogue_id: int
    utterance_id: int
    n_frames_clip: int  # frames of the prefix timeline
    positions: list[int]  # sampled positions on the prefix timeline
    picks: list[tuple[str, int]]


def _resolve(path: str, base_dir: str | Path) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else Path(base_dir) / p)


def plan_samples(clips: pd.DataFrame, segments: pd.DataFrame, num_frames: int, sampling: str,
                 base_dir: str | Path = ".") -> tuple[list[SamplePlan], dict[str, str]]:
    """Frame plans for the `status == ok` samples of `clips`; and {sample_id: reason} for the rest.

    ``segments``: positions on the prefix timeline (the concatenation of the sample's segments)
    are mapped to source-clip frames (`video_path`, `first_frame + offset`). ``rendered_clip``:
    positions index the rendered prefix clip (`clip_path`) directly.
    """
    if sampling not in ("segments", "rendered_clip"):
        raise ValueError(f"unknown sampling mode {sampling!r} (segments | rendered_clip)")
    source = {(r.meld_split, int(r.dialogue_id), int(r.utterance_id)): r.video_path
              for r in segments.itertuples(index=False)}
    plans: list[SamplePlan] = []
    excluded: dict[str, str] = {}
    for row in clips.sort_values("sample_id").itertuples(index=False):
        sid = str(row.sample_id)
        if row.status != "ok":
            excluded[sid] = f"{row.status}: {row.status_detail}".strip()
            continue
        segs = list(row.segments)
        total = int(sum(int(s["n_frames"]) for s in segs))
        if total <= 0 or total != int(row.n_frames):
            excluded[sid] = f"corrupt: segment frames {total} != clip frames {int(row.n_frames)}"
            continue
        positions = uniform_frame_indices(total, num_frames)
        key = (row.meld_split, int(row.dialogue_id))
        if sampling == "rendered_clip":
            if not isinstance(row.clip_path, str) or not row.clip_path:
                excluded[sid] = "corrupt: no rendered clip_path"
                continue
            clip = _resolve(row.clip_path, base_dir)
            picks = [(clip, p) for p in positions]
        else:
            starts = np.cumsum([0] + [int(s["n_frames"]) for s in segs])
            picks = []
            for p in positions:
                k = int(np.searchsorted(starts, p, side="right")) - 1
                seg = segs[k]
                video = source.get((key[0], key[1], int(seg["utterance_id"])))
                if video is None:
                    break
                picks.append((_resolve(video, base_dir), int(seg["first_frame"]) + p - int(starts[k])))
            if len(picks) != len(positions):
                excluded[sid] = "corrupt: a segment of the sample is missing from segments.parquet"
                continue
        plans.append(SamplePlan(sid, str(row.meld_split), int(row.dialogue_id),
                                int(row.utterance_id), total, positions, picks))
    return plans, excluded


# --------------------------------------------------------------------------------------- decoding
def decode_frames(path: str, indices: Sequence[int], decoder: str = "pyav") -> np.ndarray:
    """Decode the frames `indices` (sorted, distinct) of `path` as uint8 (k, H, W, 3)."""
    if decoder == "pyav":
        from ecem.media import read_frames

        return read_frames(path, list(indices))
    if decoder == "decord":
        import decord

        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        if indices and max(indices) >= len(vr):
            raise IndexError(f"{path}: frame {max(indices)} beyond the clip's {len(vr)} frames")
        return vr.get_batch(list(indices)).asnumpy()
    raise ValueError(f"unknown decoder {decoder!r} (pyav | decord)")


# ---------------------------------------------------------------------------------------- encoder
def resolve_device_dtype(device: str, dtype: str) -> tuple[str, str]:
    """`auto` device → cuda if available else cpu; `auto` dtype → float16 on CUDA, float32 on CPU."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"features.clip.device is {device!r} but CUDA is not available")
    if dtype == "auto":
        dtype = "float16" if device.startswith("cuda") else "float32"
    return device, dtype


def model_is_random(model: str) -> bool:
    """True when `model` is a local directory that marks itself as random weights."""
    marker = Path(model) / MODEL_MARKER
    return marker.is_file() and bool(json.loads(marker.read_text()).get("random_weights", False))


class ClipPatchEncoder:
    """A frozen CLIP vision tower that maps uint8 frames to one hidden layer's patch tokens.

    Loads `model` (local directory or hub id) with `CLIPVisionModel.from_pretrained` and
    `CLIPImageProcessor.from_pretrained`, exactly as for a real checkpoint. Encoder layers after
    the requested hidden layer are dropped (they cannot influence it), and the tower's output is
    then that layer's hidden state; the CLS token is removed.
    """

    def __init__(self, model: str, image_size: int, num_frames: int, hidden_layer: int = -2,
                 resize: str = "squash", dtype: str = "auto", device: str = "auto") -> None:
        import torch
        from transformers import CLIPImageProcessor, CLIPVisionModel

        if resize not in ("squash", "crop"):
            raise ValueError(f"unknown resize mode {resize!r} (squash | crop)")
        self.device, self.dtype_name = resolve_device_dtype(device, dtype)
        self.torch_dtype = getattr(torch, self.dtype_name)
        self.model_id = str(model)
        self.random_weights = model_is_random(model)
        self.processor = CLIPImageProcessor.from_pretrained(model)
        vision = CLIPVisionModel.from_pretrained(model, dtype=self.torch_dtype)
        cfg = vision.config
        if int(cfg.image_size) != int(image_size):
            raise ValueError(f"features.clip.image_size={image_size} but model {model!r} is built for "
                             f"{cfg.image_size} px (use a matching checkpoint, e.g. "
                             f"openai/clip-vit-large-patch14-336 for 336)")
        n_layers = int(cfg.num_hidden_layers)
        if not -(n_layers + 1) <= hidden_layer <= -1:
            raise ValueError(f"hidden_layer={hidden_layer} outside [-{n_layers + 1}, -1] for a "
                             f"{n_layers}-layer model")
        keep = n_layers + 1 + hidden_layer  # hidden_states[k] is the output of layer k
        encoder = getattr(vision, "vision_model", vision).encoder
        encoder.layers = encoder.layers[:keep]
        self.model = vision.to(self.device).eval().requires_grad_(False)
        self.image_size = int(image_size)
        self.patch_size = int(cfg.patch_size)
        self.hidden_layer = int(hidden_layer)
        self.n_layers = n_layers
        self.resize = resize
        self._maps: dict[tuple[int, int], np.ndarray] = {}
        self._affine: tuple[Any, Any] | None = None
        self.layout = TokenLayout.for_image(self.image_size, self.patch_size, num_frames,
                                           int(cfg.hidden_size))

    def settings(self) -> dict[str, Any]:
        return {"model": self.model_id, "random_weights": self.random_weights,
                "hidden_layer": self.hidden_layer, "num_hidden_layers": self.n_layers,
                "image_size": self.image_size, "patch_size": self.patch_size,
                "resize": self.resize, "dtype": self.dtype_name, "device": self.device.split(":")[0],
                "image_mean": list(self.processor.image_mean),
                "image_std": list(self.processor.image_std), "layout": self.layout.as_dict()}

    def _nearest_map(self, height: int, width: int) -> np.ndarray:
        """Flat source pixel of each output pixel of torch's `interpolate(mode="nearest")` to
        S×S, obtained by interpolating index ramps, so the gather below equals it exactly."""
        import torch
        import torch.nn.functional as F

        key = (height, width)
        if key not in self._maps:
            s = self.image_size
            rows = torch.arange(height, dtype=torch.float32).view(1, 1, height, 1)
            cols = torch.arange(width, dtype=torch.float32).view(1, 1, 1, width)
            r = F.interpolate(rows, size=(s, 1), mode="nearest").flatten().long().numpy()
            c = F.interpolate(cols, size=(1, s), mode="nearest").flatten().long().numpy()
            self._maps[key] = (r[:, None] * width + c[None, :]).ravel()
        return self._maps[key]

    def preprocess(self, frames: np.ndarray) -> Any:
        """uint8 (B, H, W, 3) frames → model input prepared on CPU (runs in the decode thread).

        ``squash``: nearest-neighbour resize to S×S (Video-ChatGPT), kept as uint8 (B, 3, S, S)
        (a channels-last view); CLIP's rescale + normalisation follows in :meth:`normalize` (the
        processor's resize and crop are identities on S×S images). ``crop``: CLIP's image
        processor on the full frames.
        """
        import torch

        frames = np.asarray(frames)
        b, h, w, _ = frames.shape
        if self.resize == "squash":
            s = self.image_size
            if (h, w) != (s, s):
                frames = np.take(frames.reshape(b, h * w, 3), self._nearest_map(h, w), axis=1)
            return torch.from_numpy(np.ascontiguousarray(frames)).view(b, s, s, 3).permute(0, 3, 1, 2)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        return self.processor(images=x, return_tensors="pt")["pixel_values"]

    def normalize(self, pixels: Any) -> Any:
        """uint8 (B, 3, S, S) → CLIP-normalised float32 with the processor's own constants."""
        import torch

        if self._affine is None:
            p = self.processor
            mean = torch.tensor(p.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
            std = torch.tensor(p.image_std, dtype=torch.float32).view(1, 3, 1, 1)
            scale = torch.full_like(mean, float(p.rescale_factor) if p.do_rescale else 1.0)
            if not p.do_normalize:
                mean, std = torch.zeros_like(mean), torch.ones_like(std)
            self._affine = (scale / std, -mean / std)  # x * a + b == (x * rescale - mean) / std
        a, b = (t.to(pixels.device) for t in self._affine)
        return pixels.to(torch.float32).mul_(a).add_(b)

    def encode(self, pixels: Any) -> np.ndarray:
        """Prepared frames (from :meth:`preprocess`) → float32 patch tokens (B, N, D)."""
        import torch

        with torch.inference_mode():
            if pixels.dtype == torch.uint8:  # normalised where the model runs (uint8 = 4x less copying)
                pixels = self.normalize(pixels.to(self.device, non_blocking=True))
            x = pixels.to(self.device, self.torch_dtype)
            hidden = self.model(pixel_values=x).last_hidden_state[:, 1:]
            return hidden.float().cpu().numpy()


# ------------------------------------------------------------------------------------- extraction
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
    decode_s: float = 0.0  # time spent in the decode thread
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

    def add(self, slots: Sequence[int], tokens: np.ndarray) -> None:
        feats = tokens.astype(np.float64)
        if self.temporal is None or self.spatial is None:
            self.temporal = np.zeros((self.layout.num_frames, feats.shape[1]), np.float64)
            self.spatial = np.zeros(feats.shape, np.float64)
        mean = feats.mean(axis=0)
        for slot in slots:
            self.temporal[slot] = mean
        self.spatial += feats * len(slots)
        self.remaining -= 1

    def result(self) -> np.ndarray:
        assert self.temporal is not None and self.spatial is not None
        out = np.concatenate([self.temporal, self.spatial / self.n_picked])
        return out.astype(TOKEN_DTYPE)


_DONE = object()


def extract_tokens(plans: Sequence[SamplePlan], encoder: ClipPatchEncoder, batch_size: int,
                   decoder: str = "pyav", progress: bool = True,
                   stats: ExtractStats | None = None) -> Iterator[SampleTokens]:
    """Yield each sample's `(T + N, D)` float16 tokens; every distinct (source, frame) is decoded
    and encoded once.

    A background thread decodes the sources in order, preprocesses the frames and packs them into
    batches of `batch_size` (frames of consecutive utterances share a batch); the calling thread
    only runs the model and streams each frame's patch tokens into the samples that use it. A
    source that fails to decode marks the samples using it as failed (`stats.failed`); the others
    go on. Batches are the same on every run, so the output is too.
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
    normalize_on_cpu = not encoder.device.startswith("cuda")  # on a GPU: ship uint8, normalise there

    def produce() -> None:
        keys: list[tuple[str, int]] = []
        chunks: list[Any] = []
        n = 0

        def emit(k: int) -> None:
            nonlocal keys, chunks, n
            pix = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
            q.put(("batch", keys[:k], pix[:k]))
            keys, chunks, n = keys[k:], ([pix[k:]] if n > k else []), n - k

        try:
            for src in order:
                if stop.is_set():
                    return
                idx = sorted(by_source[src])
                t0 = time.perf_counter()
                try:
                    pixels = encoder.preprocess(decode_frames(src, idx, decoder))
                    if normalize_on_cpu and pixels.dtype == torch.uint8:
                        pixels = encoder.normalize(pixels)
                except Exception as exc:  # noqa: BLE001 - any decode failure quarantines its samples
                    stats.decode_s += time.perf_counter() - t0
                    q.put(("error", [(src, k) for k in idx], f"{type(exc).__name__}: {exc}"))
                    continue
                stats.decode_s += time.perf_counter() - t0  # not counting waits on the queue
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
                acc.add(slots, tokens[j])
                if acc.remaining == 0:
                    del accs[i]
                    stats.ok += 1
                    yield SampleTokens(plans[i], acc.result())

    thread = threading.Thread(target=produce, name="clip-decode", daemon=True)
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


# -------------------------------------------------------------------------------------- Parquet IO
FEATURE_SCHEMA = pa.schema([
    ("sample_id", pa.string()),
    ("meld_split", pa.string()),
    ("dialogue_id", pa.int64()),
    ("utterance_id", pa.int64()),
    ("tokens", pa.large_binary()),  # float16 little-endian, C order, `shape`
    ("shape", pa.list_(pa.int32())),
    ("n_frames_clip", pa.int32()),  # frames of the prefix clip
    ("n_frames_sampled", pa.int32()),  # real frames behind the temporal tokens (≤ T)
    ("padding", pa.string()),  # none | zeros_after
    ("frame_positions", pa.list_(pa.int32())),  # sampled positions on the prefix timeline
])


def _schema_with_settings(settings: Mapping[str, Any]) -> pa.Schema:
    meta = {METADATA_KEY: json.dumps({"stage": STAGE, "settings": dict(settings)}, sort_keys=True,
                                     default=str).encode()}
    return FEATURE_SCHEMA.with_metadata(meta)


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


def write_features(rows: Iterable[dict[str, Any]], path: str | Path, settings: Mapping[str, Any],
                   rows_per_group: int = 32) -> int:
    """Stream feature rows into a Parquet file atomically; returns the number of rows."""
    schema = _schema_with_settings(settings)
    n = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            buf: list[dict[str, Any]] = []
            for row in rows:
                buf.append(row)
                if len(buf) >= rows_per_group:
                    writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                    n += len(buf)
                    buf = []
            if buf or n == 0:
                writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                n += len(buf)
    return n


def concat_features(parts: Sequence[str | Path], path: str | Path,
                    settings: Mapping[str, Any]) -> int:
    """Copy the shard files' rows, in order, into one Parquet file (streamed, row group by group)."""
    schema = _schema_with_settings(settings)
    n = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                pf = pq.ParquetFile(part)
                for g in range(pf.num_row_groups):
                    table = pf.read_row_group(g).cast(FEATURE_SCHEMA)
                    if table.num_rows:
                        writer.write_table(table.replace_schema_metadata(schema.metadata))
                        n += table.num_rows
            if n == 0:
                writer.write_table(FEATURE_SCHEMA.empty_table().replace_schema_metadata(schema.metadata))
    return n


def _decode_tokens(blob: bytes, shape: Sequence[int]) -> np.ndarray:
    return np.frombuffer(blob, dtype=TOKEN_DTYPE).reshape(tuple(int(s) for s in shape)).copy()


def load_tokens(path: str | Path, sample_ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """{sample_id: (T + N, D) float16 array} from a feature file or a directory of shard files.

    With `sample_ids`, only those are read (a filter pushed into the Parquet scan); ids without
    features are absent from the result (compare its keys to what you asked for).
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet")
    flt = None
    if sample_ids is not None:
        ids = sorted(set(str(s) for s in sample_ids))
        if not ids:
            return {}
        flt = pc.field("sample_id").isin(ids)
    table = dataset.to_table(columns=["sample_id", "tokens", "shape"], filter=flt)
    out: dict[str, np.ndarray] = {}
    for sid, blob, shape in zip(table.column("sample_id").to_pylist(),
                                table.column("tokens").to_pylist(),
                                table.column("shape").to_pylist()):
        out[sid] = _decode_tokens(blob, shape)
    return out


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings a feature file was written with (model, layer, image size, layout, ...)."""
    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        raise ValueError(f"{path} carries no ECEM stage metadata")
    record = json.loads(meta[METADATA_KEY])
    if record.get("stage") != STAGE:
        raise ValueError(f"{path} was written by stage {record.get('stage')!r}, not {STAGE!r}")
    return record["settings"]


def read_layout(path: str | Path) -> TokenLayout:
    """The token layout recorded in a feature file's metadata."""
    lay = read_settings(path)["layout"]
    return TokenLayout(int(lay["num_frames"]), int(lay["num_patches"]), int(lay["hidden_size"]))
