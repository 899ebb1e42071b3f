"""DDAMFN: Dual-Direction Attention Mixed Feature Network for facial expression recognition
(Zhang et al., Electronics 2023), implemented here in PyTorch.

Architecture (facts from the paper and the authors' public code; the code here is ours):

* Backbone: MixedFeatureNet, a MobileFaceNet-style network on a 112×112 RGB face. A 3×3 stride-2
  conv and a 3×3 depthwise conv, then "mixed depthwise" bottlenecks: 1×1 expansion (conv + BN +
  PReLU) → MixConv (the channels split into groups, each group a depthwise conv with its own kernel
  size 3/5/7/9; no BN/activation after it) → coordinate attention → 1×1 linear projection (conv +
  BN), with a residual connection in the repeated blocks. Stages: 56→28 (9 blocks, 64 ch), 28→14
  (16 blocks, 128 ch), 14→7 (6 blocks, 256 ch), then a 1×1 conv to 512 channels. Output 512×7×7.
* Dual-direction attention (DDA) heads: each head pools the map along each direction with a
  learned depthwise "linear GDConv" (1×7 and 7×1 kernels), shares a 1×1 conv + BN + h-swish over
  the concatenated directions, and produces a horizontal and a vertical sigmoid attention map whose
  product is the head's attention. The heads are combined by an element-wise maximum, multiplied
  onto the feature map, reduced by a 7×7 depthwise conv + BN (GDConv), flattened and classified by
  a linear layer (7 classes for RAF-DB / AffectNet-7, 8 for AffectNet-8).

Parameter names follow the authors' released checkpoints (`model_state_dict`: `features.N…`,
`cat_headK.CoordAtt…`, `Linear…`, `fc…`, `bn…`), so those checkpoints load as they are.
Preprocessing: RGB 112×112, ImageNet mean/std.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

INPUT_SIZE = 112
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class DDAMFNCheckpointError(ValueError):
    """A DDAMFN checkpoint does not have the expected layout."""


class ConvBNPReLU(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.prelu = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class ConvBN(nn.Module):
    """Convolution + batch norm without activation (a 'linear' block)."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int] = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, 1, 0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class HSwish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * nn.functional.relu6(x + 3.0) / 6.0


class MixConv(nn.Module):
    """Depthwise convolutions with different kernel sizes on channel groups, concatenated.

    `bn` and `prelu` exist because the released checkpoints hold them; as in the reference
    forward pass they are not applied."""

    def __init__(self, channels: int, kernels: Sequence[int], splits: Sequence[int], stride: int) -> None:
        super().__init__()
        if sum(splits) != channels:
            raise ValueError(f"channel split {list(splits)} does not add up to {channels}")
        self.splits = list(splits)
        self.mixed_depthwise_conv = nn.ModuleList(
            nn.Conv2d(c, c, k, stride, k // 2, groups=c, bias=False) for k, c in zip(kernels, splits))
        self.bn = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.splits, dim=1)
        return torch.cat([conv(p) for conv, p in zip(self.mixed_depthwise_conv, parts)], dim=1)


class CoordinateAttention(nn.Module):
    """Coordinate attention inside the backbone blocks (average pooling along H and W)."""

    def __init__(self, channels: int, reduction: int = 32) -> None:
        super().__init__()
        mid = max(8, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, channels, 1)
        self.conv3 = nn.Conv2d(mid, channels, 1)
        self.act = HSwish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        pooled_h = x.mean(dim=3, keepdim=True)                    # (B, C, H, 1)
        pooled_w = x.mean(dim=2, keepdim=True).transpose(2, 3)    # (B, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([pooled_h, pooled_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        att_h = self.conv2(y_h).sigmoid()
        att_w = self.conv3(y_w.transpose(2, 3)).sigmoid()
        return x * att_h * att_w


class MixedBlock(nn.Module):
    """Expansion → MixConv → coordinate attention → projection (+ residual)."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernels: Sequence[int], splits: Sequence[int],
                 stride: int, residual: bool) -> None:
        super().__init__()
        self.conv = ConvBNPReLU(c_in, expand)
        self.conv_dw = MixConv(expand, kernels, splits, stride)
        self.CA = CoordinateAttention(expand)
        self.project = ConvBN(expand, c_out)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.CA(self.conv_dw(self.conv(x))))
        return x + y if self.residual else y


class MixedStage(nn.Module):
    def __init__(self, channels: int, blocks: int, expand: int, kernels: Sequence[int],
                 splits: Sequence[int]) -> None:
        super().__init__()
        self.model = nn.Sequential(*(MixedBlock(channels, channels, expand, kernels, splits, 1, True)
                                     for _ in range(blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def mixed_feature_backbone() -> nn.Sequential:
    """MixedFeatureNet up to its 512×7×7 map (the part DDAMFN keeps)."""
    return nn.Sequential(
        ConvBNPReLU(3, 64, 3, 2, 1),                                              # 112 → 56
        ConvBNPReLU(64, 64, 3, 1, 1, groups=64),
        MixedBlock(64, 64, 128, (3, 5, 7), (64, 32, 32), 2, False),               # 56 → 28
        MixedStage(64, 9, 128, (3, 5), (96, 32)),
        MixedBlock(64, 128, 256, (3, 5, 7), (128, 64, 64), 2, False),             # 28 → 14
        MixedStage(128, 16, 256, (3, 5), (192, 64)),
        MixedBlock(128, 256, 1024, (3, 5, 7, 9), (256, 256, 256, 256), 2, False),  # 14 → 7
        MixedStage(256, 6, 512, (3, 5, 7), (172, 170, 170)),
        ConvBNPReLU(256, 512),
    )


class DualDirectionAttention(nn.Module):
    """One DDA head's attention map over the 512×7×7 feature map."""

    def __init__(self, channels: int = 512, size: int = 7, reduction: int = 32) -> None:
        super().__init__()
        mid = max(8, channels // reduction)
        self.Linear_h = ConvBN(channels, channels, (1, size), groups=channels)
        self.Linear_w = ConvBN(channels, channels, (size, 1), groups=channels)
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, channels, 1)
        self.conv3 = nn.Conv2d(mid, channels, 1)
        self.act = HSwish()
        # held by the released checkpoints, unused by the forward pass
        self.Linear = ConvBN(channels, channels, (size, size), groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        along_w = self.Linear_h(x)                          # (B, C, H, 1)
        along_h = self.Linear_w(x).transpose(2, 3)          # (B, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([along_w, along_h], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        att_h = self.conv2(y_h).sigmoid()                   # (B, C, H, 1)
        att_w = self.conv3(y_w.transpose(2, 3)).sigmoid()   # (B, C, 1, W)
        return att_h * att_w


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.CoordAtt = DualDirectionAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.CoordAtt(x)


class DDAMFN(nn.Module):
    """DDAMFN classifier; `forward` returns logits `(B, num_class)`."""

    def __init__(self, num_class: int = 7, num_head: int = 2) -> None:
        super().__init__()
        self.num_class, self.num_head = num_class, num_head
        self.features = mixed_feature_backbone()
        for i in range(num_head):
            setattr(self, f"cat_head{i}", _Head())
        self.Linear = ConvBN(512, 512, (7, 7), groups=512)
        self.fc = nn.Linear(512, num_class)
        self.bn = nn.BatchNorm1d(num_class)  # held by the checkpoints, unused by the forward pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.features(x)
        att = getattr(self, "cat_head0")(feat)
        for i in range(1, self.num_head):
            att = torch.maximum(att, getattr(self, f"cat_head{i}")(feat))
        return self.fc(self.Linear(feat * att).flatten(1))


def checkpoint_shape(state: Mapping[str, Any]) -> tuple[int, int]:
    """(num_class, num_head) of a DDAMFN state dict."""
    if "fc.weight" not in state:
        raise DDAMFNCheckpointError("not a DDAMFN state dict: it has no 'fc.weight'")
    heads = {k.split(".")[0] for k in state if k.startswith("cat_head")}
    return int(state["fc.weight"].shape[0]), len(heads)


def load_ddamfn(path: str | Path, num_class: int | None = None, num_head: int | None = None) -> DDAMFN:
    """Build DDAMFN and load an authors'-layout checkpoint: a dict whose `model_state_dict` is the
    network's state dict (a `module.` prefix from DataParallel is accepted). Wrong layouts raise
    DDAMFNCheckpointError naming the missing/unexpected keys."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"DDAMFN checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, Mapping) or "model_state_dict" not in ckpt:
        keys = list(ckpt)[:5] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise DDAMFNCheckpointError(
            f"{path}: expected the DDAMFN checkpoint layout {{'model_state_dict': ...}}, got {keys}")
    state = {k.removeprefix("module."): v for k, v in ckpt["model_state_dict"].items()}
    n_class, n_head = checkpoint_shape(state)
    if num_class is not None and n_class != num_class:
        raise DDAMFNCheckpointError(f"{path}: checkpoint has {n_class} classes, config expects {num_class}")
    if num_head is not None and n_head != num_head:
        raise DDAMFNCheckpointError(f"{path}: checkpoint has {n_head} attention heads, config expects {num_head}")
    model = DDAMFN(n_class, n_head)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        def show(keys: list[str]) -> str:
            return f"{len(keys)} ({', '.join(keys[:4])}{', …' if len(keys) > 4 else ''})"
        raise DDAMFNCheckpointError(
            f"{path}: state dict does not match DDAMFN({n_class} classes, {n_head} heads): missing keys "
            f"{show(missing)}, unexpected keys {show(unexpected)}, wrong shapes {show(wrong_shape)}")
    model.load_state_dict(state)
    return model.eval()


def save_ddamfn(model: DDAMFN, path: str | Path, **extra: Any) -> None:
    """Save in the authors' layout (`{'model_state_dict': ..., **extra}`)."""
    torch.save({"model_state_dict": model.state_dict(), **extra}, path)
