"""The video-token contract (modality V): layout, pooling and padding rules, and columns.

A sample's video tokens are a `(T + N, D)` matrix (:class:`TokenLayout`): `T` temporal tokens (the
mean over patches of each sampled frame, zero rows after the real ones when the prefix has fewer
than `T` frames) followed by `N` spatial tokens (the mean over the sampled frames of each patch).
They are stored in the token file form both modalities share (:mod:`ecem.tokens`): one Parquet row
per sample in `results/features/clip.parquet` with the columns of :data:`SCHEMA`, the encoder, layer,
image size and layout in the file's metadata, and the same tokens as one array `clip.tokens.npy`.
The audio-token contract is its sibling, :mod:`ecem.features.audio`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pyarrow as pa

from ecem import tokens

STAGE = "features/clip"
PADDING_RULE = (
    "when a clip has t < T frames, all t frames are used once and the T - t missing temporal "
    "tokens are zero rows appended after the real ones; spatial tokens average the t real frames"
)
POOLING_RULE = (
    "temporal token i = mean over patches of frame i; spatial token j = mean over frames of "
    "patch j; tokens = concat(temporal (T), spatial (N)); hidden layer patch tokens, CLS dropped"
)


@dataclasses.dataclass(frozen=True)
class TokenLayout:
    """Shape of one sample's video-token matrix: `num_frames` temporal + `num_patches` spatial rows.

    The encoder derives it from the model (:meth:`for_image`) and records it in the token file's
    metadata; :func:`read_video_layout` reads it back.
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


SCHEMA = pa.schema([
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


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings a video token file was written with (model, layer, image size, layout, ...),
    checking it is a video token file."""
    return tokens.read_settings(path, stage=STAGE)


def read_video_layout(path: str | Path) -> TokenLayout:
    """The `(T + N, D)` layout of every sample's video tokens, from a token file's metadata."""
    lay = read_settings(path)["layout"]
    return TokenLayout(int(lay["num_frames"]), int(lay["num_patches"]), int(lay["hidden_size"]))
