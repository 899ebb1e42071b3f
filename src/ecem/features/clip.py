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
import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecem.artifacts import METADATA_KEY, atomic_path
from ecem.devices import resolve_device

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
    source = {(r.meld_split, int(r.dialogue_id), int(r.utterance_id)): _resolve(r.video_path, base_dir)
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
            videos = [source.get((key[0], key[1], int(s["utterance_id"]))) for s in segs]
            seg_of = np.searchsorted(starts, positions, side="right") - 1
            picks = []
            for p, k in zip(positions, seg_of.tolist()):
                if videos[k] is None:
                    break
                picks.append((videos[k], int(segs[k]["first_frame"]) + p - int(starts[k])))
            if len(picks) != len(positions):
                excluded[sid] = "corrupt: a segment of the sample is missing from segments.parquet"
                continue
        plans.append(SamplePlan(sid, str(row.meld_split), int(row.dialogue_id),
                                int(row.utterance_id), total, positions, picks))
    return plans, excluded


# --------------------------------------------------------------------------------------- decoding
def decode_frames(path: str, indices: Sequence[int], decoder: str = "pyav",
                  threaded: bool | None = True) -> np.ndarray:
    """Decode the frames `indices` (sorted, distinct) of `path` as uint8 (k, H, W, 3).

    `threaded`: PyAV's codec threading, as in :func:`ecem.media.iter_frames` (decord always
    decodes on one thread).
    """
    if decoder == "pyav":
        from ecem.media import read_frames

        return read_frames(path, list(indices), threaded=threaded)
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
    device = resolve_device(device, "features.clip.device")
    if dtype == "auto":
        dtype = "float16" if device.startswith("cuda") else "float32"
    return device, dtype


def model_is_random(model: str) -> bool:
    """True when `model` is a local directory that marks itself as random weights."""
    marker = Path(model) / MODEL_MARKER
    return marker.is_file() and bool(json.loads(marker.read_text()).get("random_weights", False))


def fold_pixel_normalization(conv: Any, image_mean: Sequence[float], image_std: Sequence[float],
                             rescale: float) -> Any:
    """A patch-embedding convolution that takes raw 0–255 pixels and equals `conv` applied to
    CLIP-normalised pixels `(x * rescale - mean_c) / std_c`.

    The normalisation is a per-channel affine map and the patch convolution is linear without
    padding, so the map folds into the kernel (`W * rescale / std_c`) and a bias
    (`-Σ W * mean_c / std_c`). The model then reads uint8 frames converted straight to its dtype:
    one pass over the pixels fewer on the CPU, and 4× less host→GPU traffic than float32 input.
    Exact up to float rounding (tested against the image processor's own output).
    """
    import torch

    if any(int(p) for p in torch.nn.modules.utils._pair(conv.padding)):
        raise ValueError("cannot fold pixel normalisation into a padded convolution")
    weight = conv.weight.detach().float()
    mean = torch.tensor(list(image_mean), dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(list(image_std), dtype=torch.float32).view(1, -1, 1, 1)
    bias = -(weight * (mean / std)).sum(dim=(1, 2, 3))
    if conv.bias is not None:
        bias = bias + conv.bias.detach().float()
    folded = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                             bias=True)
    with torch.no_grad():
        folded.weight.copy_(weight * (float(rescale) / std))
        folded.bias.copy_(bias)
    return folded.to(conv.weight.dtype).requires_grad_(False)


class ClipPatchEncoder:
    """A frozen CLIP vision tower that maps uint8 frames to one hidden layer's patch tokens.

    Loads `model` (local directory or hub id) with `CLIPVisionModel.from_pretrained` and
    `CLIPImageProcessor.from_pretrained`, exactly as for a real checkpoint. Encoder layers after
    the requested hidden layer are dropped (they cannot influence it), and the tower's output is
    then that layer's hidden state; the CLS token is removed. In ``squash`` mode the processor's
    rescale + normalisation is folded into the patch embedding (:func:`fold_pixel_normalization`),
    so :meth:`encode` takes the resized uint8 frames themselves.
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
        tower = getattr(vision, "vision_model", vision)
        tower.encoder.layers = tower.encoder.layers[:keep]
        self.raw_pixels = resize == "squash"  # encode() takes uint8 frames, normalised by the model
        if self.raw_pixels:
            p = self.processor
            mean, std = (p.image_mean, p.image_std) if p.do_normalize else ([0.0] * 3, [1.0] * 3)
            tower.embeddings.patch_embedding = fold_pixel_normalization(
                tower.embeddings.patch_embedding, mean, std,
                float(p.rescale_factor) if p.do_rescale else 1.0)
        self.model = vision.to(self.device).eval().requires_grad_(False)
        self._input: Any = None  # reused CPU input buffer (see _model_input)
        self.image_size = int(image_size)
        self.patch_size = int(cfg.patch_size)
        self.hidden_layer = int(hidden_layer)
        self.n_layers = n_layers
        self.resize = resize
        self._maps: dict[tuple[int, int], np.ndarray] = {}
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
        """uint8 (B, H, W, 3) frames → what :meth:`encode` takes (runs in the decode thread).

        ``squash``: nearest-neighbour resize to S×S (Video-ChatGPT), kept as uint8 (B, 3, S, S)
        (a channels-last view); CLIP's rescale + normalisation happen inside the model (folded
        into its patch embedding; the processor's resize and crop are identities on S×S images).
        ``crop``: CLIP's image processor on the full frames (float32, normalised).
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

    def load(self, path: str, indices: Sequence[int], decoder: str = "pyav",
             threaded: bool | None = True) -> Any:
        """Decode the frames `indices` (sorted, distinct) of `path` straight into what
        :meth:`encode` takes; equal to ``preprocess(decode_frames(...))``.

        With PyAV in ``squash`` mode each frame is decoded as RGBA and resized as it arrives:
        the nearest-neighbour gather then moves whole 4-byte pixels (3× faster than 3-byte
        ones) and full-size frames are never stacked, which makes decode + resize cost about
        what decoding alone does. The alpha byte is dropped by a strided view, not a copy.
        """
        import torch

        if self.resize != "squash" or decoder != "pyav":
            return self.preprocess(decode_frames(path, indices, decoder, threaded))
        from ecem.media import iter_frames

        s = self.image_size
        resized: list[np.ndarray] = []
        got: list[int] = []
        for i, rgba in iter_frames(path, indices, "rgba", threaded=threaded):
            h, w, _ = rgba.shape
            pixels = np.ascontiguousarray(rgba).view(np.uint32).reshape(h * w)
            resized.append(pixels if (h, w) == (s, s) else np.take(pixels, self._nearest_map(h, w)))
            got.append(i)
        if got != list(indices):
            missing = sorted(set(indices) - set(got))
            raise IndexError(f"{path}: frames {missing[:5]} beyond the clip's decoded frames")
        rgba_batch = np.stack(resized).view(np.uint8).reshape(len(got), s, s, 4)
        return torch.from_numpy(rgba_batch[..., :3]).permute(0, 3, 1, 2)

    def _model_input(self, pixels: Any) -> Any:
        """Pixels from :meth:`preprocess` → a tensor of the model's dtype on its device.

        On the CPU, uint8 frames are converted into one reused channels-last buffer: allocating a
        fresh float tensor per batch (38 MB for 64 frames at 224 px) costs more in page faults
        than the conversion itself.
        """
        import torch

        if self.raw_pixels != (pixels.dtype == torch.uint8):
            raise TypeError(f"resize={self.resize!r} encodes {'uint8' if self.raw_pixels else 'float'} "
                            f"pixels from preprocess(), got {pixels.dtype}")
        if self.device.startswith("cuda") or not self.raw_pixels:
            return pixels.to(self.device, non_blocking=True).to(self.torch_dtype)
        buf = self._input
        if buf is None or buf.shape[0] < pixels.shape[0] or buf.shape[1:] != pixels.shape[1:]:
            buf = torch.empty(pixels.shape, dtype=self.torch_dtype,
                              memory_format=torch.channels_last)
            self._input = buf
        return buf[: pixels.shape[0]].copy_(pixels)

    def encode(self, pixels: Any) -> np.ndarray:
        """Pixels from :meth:`preprocess` → float32 patch tokens (B, N, D)."""
        import torch

        with torch.inference_mode():
            hidden = self.model(pixel_values=self._model_input(pixels)).last_hidden_state[:, 1:]
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


def extract_tokens(plans: Sequence[SamplePlan], encoder: ClipPatchEncoder, batch_size: int,
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
        """(pixels, None, seconds) or (None, error, seconds): any decode failure quarantines."""
        t0 = time.perf_counter()
        try:
            pixels = encoder.load(src, sorted(by_source[src]), decoder, threaded_decode)
        except Exception as exc:  # noqa: BLE001 - reported per sample, the shard goes on
            return None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
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
