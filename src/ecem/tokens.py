"""The video-token file contract: how FAME-Net's vision input is laid out and stored.

One Parquet row per sample (`results/features/clip.parquet`): ``tokens`` (float16, little-endian,
C order, as bytes), ``shape`` `[T+N, D]`, ``n_frames_sampled``, ``padding``, with the encoder,
layer, image size and :class:`TokenLayout` in the file's `ecem` schema metadata. The visual stage
writes it (`ecem.features`), FAME-Net reads it (:func:`load_tokens`); neither needs the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ecem.artifacts import atomic_path, decode_metadata, encode_metadata

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
    return FEATURE_SCHEMA.with_metadata(encode_metadata(STAGE, settings))


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
    record = decode_metadata(pq.read_schema(path).metadata, path)
    if record.get("stage") != STAGE:
        raise ValueError(f"{path} was written by stage {record.get('stage')!r}, not {STAGE!r}")
    return record["settings"]


def read_layout(path: str | Path) -> TokenLayout:
    """The token layout recorded in a feature file's metadata."""
    lay = read_settings(path)["layout"]
    return TokenLayout(int(lay["num_frames"]), int(lay["num_patches"]), int(lay["hidden_size"]))
