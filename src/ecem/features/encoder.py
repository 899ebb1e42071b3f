"""The frozen vision encoder (CLIP or DINOv2): uint8 frames → one hidden layer's patch tokens, and
the pooling of those into temporal and spatial tokens."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from ecem.devices import resolve_device
from ecem.features.video import TokenLayout
from ecem.model_refs import model_card

log = logging.getLogger(__name__)


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


def resolve_device_dtype(device: str, dtype: str) -> tuple[str, str]:
    """`auto` device → cuda if available else cpu; `auto` dtype → float16 on CUDA, float32 on CPU."""
    device = resolve_device(device, "features.clip.device")
    if dtype == "auto":
        dtype = "float16" if device.startswith("cuda") else "float32"
    return device, dtype


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


@dataclass(frozen=True)
class Backbone:
    """Where one vision family keeps the parts the encoder touches (attribute paths)."""

    model_class: str  # the transformers class that loads the checkpoint's vision tower
    tower: str  # loaded model → the transformer, where the class wraps one ("" or absent: the model)
    layers: str  # tower → its list of encoder layers
    patch_conv: str  # tower → the patch-embedding convolution (normalisation folds into it)
    final_norm: str | None  # tower → a norm applied after the last layer (dropped: we want the layer's own output)
    fixed_size: bool  # position embeddings for config.image_size only (CLIP) vs interpolated (DINOv2)


# CLIP ViT-L/14 is the paper's encoder; DINOv2 (ViT-S/14 bundled offline) its real stand-in.
BACKBONES = {
    "clip": Backbone("CLIPVisionModel", "vision_model", "encoder.layers", "embeddings.patch_embedding",
                     None, True),
    "clip_vision_model": Backbone("CLIPVisionModel", "vision_model", "encoder.layers",
                                  "embeddings.patch_embedding", None, True),
    "dinov2": Backbone("Dinov2Model", "", "encoder.layer", "embeddings.patch_embeddings.projection",
                       "layernorm", False),
    "dinov2_with_registers": Backbone("Dinov2WithRegistersModel", "", "encoder.layer",
                                      "embeddings.patch_embeddings.projection", "layernorm", False),
}


def _get(obj: Any, path: str) -> Any:
    return reduce(getattr, path.split("."), obj) if path else obj


def _set(obj: Any, path: str, value: Any) -> None:
    *parent, name = path.split(".")
    setattr(_get(obj, ".".join(parent)), name, value)


def backbone_of(model: str) -> tuple[str, Backbone]:
    """The checkpoint's `model_type` and how to handle it; a clear error for other families."""
    from transformers import AutoConfig

    model_type = str(AutoConfig.from_pretrained(model).model_type)
    if model_type not in BACKBONES:
        raise ValueError(f"features.clip.model {model!r} is a {model_type!r} model; the visual stage "
                         f"takes {', '.join(sorted(BACKBONES))} vision backbones")
    return model_type, BACKBONES[model_type]


class VisionPatchEncoder:
    """A frozen ViT (CLIP's vision tower or DINOv2) mapping uint8 frames to one hidden layer's
    patch tokens.

    Loads `model` (local directory or hub id) with its family's transformers class and
    `AutoImageProcessor.from_pretrained`, exactly as for a hub checkpoint. Encoder layers after
    the requested hidden layer are dropped (they cannot influence it), as is any norm after the
    last layer, so the tower's output is that layer's hidden state, `hidden_states[k]`; the CLS
    and register tokens are removed. In ``squash`` mode the processor's rescale +
    normalisation (CLIP's OpenAI mean/std, DINOv2's ImageNet mean/std: each model's own) is folded
    into the patch embedding (:func:`fold_pixel_normalization`), so :meth:`encode` takes the
    resized uint8 frames themselves.
    """

    def __init__(self, model: str, image_size: int, num_frames: int, hidden_layer: int = -2,
                 resize: str = "squash", dtype: str = "auto", device: str = "auto") -> None:
        import torch
        import transformers
        from transformers import AutoImageProcessor

        if resize not in ("squash", "crop"):
            raise ValueError(f"unknown resize mode {resize!r} (squash | crop)")
        self.device, self.dtype_name = resolve_device_dtype(device, dtype)
        self.torch_dtype = getattr(torch, self.dtype_name)
        self.model_id = str(model)
        self.card = model_card(model)
        self.random_weights = bool(self.card.get("random_weights", False))
        model_type, backbone = backbone_of(model)
        self.processor = AutoImageProcessor.from_pretrained(model)
        vision = getattr(transformers, backbone.model_class).from_pretrained(model, dtype=self.torch_dtype)
        cfg = vision.config
        self.backbone = backbone.model_class
        if backbone.fixed_size and int(cfg.image_size) != int(image_size):
            raise ValueError(f"features.clip.image_size={image_size} but model {model!r} is built for "
                             f"{cfg.image_size} px (use a matching checkpoint, e.g. "
                             f"openai/clip-vit-large-patch14-336 for 336)")
        n_layers = int(cfg.num_hidden_layers)
        if not -(n_layers + 1) <= hidden_layer <= -1:
            raise ValueError(f"hidden_layer={hidden_layer} outside [-{n_layers + 1}, -1] for a "
                             f"{n_layers}-layer model")
        keep = n_layers + 1 + hidden_layer  # hidden_states[k] is the output of layer k
        tower = getattr(vision, backbone.tower, vision) if backbone.tower else vision
        _set(tower, backbone.layers, _get(tower, backbone.layers)[:keep])
        if backbone.final_norm:
            _set(tower, backbone.final_norm, torch.nn.Identity())
        self.n_special = 1 + int(getattr(cfg, "num_register_tokens", 0) or 0)  # CLS (+ registers)
        self.raw_pixels = resize == "squash"  # encode() takes uint8 frames, normalised by the model
        if self.raw_pixels:
            p = self.processor
            mean, std = (p.image_mean, p.image_std) if p.do_normalize else ([0.0] * 3, [1.0] * 3)
            _set(tower, backbone.patch_conv, fold_pixel_normalization(
                _get(tower, backbone.patch_conv), mean, std,
                float(p.rescale_factor) if p.do_rescale else 1.0))
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
        log.info("vision encoder %s (%s, %s): hidden layer %d of %d, %d px, layout %s", self.model_id,
                 self.backbone, "random weights" if self.random_weights else "pretrained",
                 hidden_layer, n_layers, self.image_size, self.layout.as_dict())

    def settings(self) -> dict[str, Any]:
        return {"model": self.model_id, "random_weights": self.random_weights, "backbone": self.backbone,
                "model_card": {k: self.card[k] for k in ("model", "stand_in_for", "bundled", "source")
                               if k in self.card},
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
        s = self.image_size  # the processor's resize + crop, at the configured size
        return self.processor(images=x, return_tensors="pt", size={"shortest_edge": s},
                              crop_size={"height": s, "width": s})["pixel_values"]

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
            from ecem.features.frames import decode_frames

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
            hidden = self.model(pixel_values=self._model_input(pixels)).last_hidden_state[:, self.n_special:]
            return hidden.float().cpu().numpy()
