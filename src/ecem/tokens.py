"""The video-token file contract: how FAME-Net's vision input is laid out and stored.

One Parquet row per sample (`results/features/clip.parquet`): ``tokens`` (float16, little-endian,
C order, as bytes), ``shape`` `[T+N, D]`, ``n_frames_sampled``, ``padding``, with the encoder,
layer, image size and :class:`TokenLayout` in the file's `ecem` schema metadata. The visual stage
writes it (`ecem.features`), FAME-Net reads it; neither needs the other.

Beside it, the same tokens as one `(samples, T+N, D)` float16 NumPy array in the Parquet file's row
order (`clip.tokens.npy`, :func:`write_token_array`). Training and generation read that through
:class:`TokenStore`, one sample at a time with a positioned read, so their memory does not grow
with the dataset: at the paper's 356 × 1024 tokens, decoding every Parquet blob into arrays held
4.1–4.4× the tokens' bytes for the whole run (16 GB for ECEM's train + val). :func:`load_tokens`
(everything in memory) stays for small files and tests.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
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


def _schema_with_settings(settings: Mapping[str, Any], schema: pa.Schema, stage: str) -> pa.Schema:
    return schema.with_metadata(encode_metadata(stage, settings))


def write_features(rows: Iterable[dict[str, Any]], path: str | Path, settings: Mapping[str, Any],
                   rows_per_group: int = 32, schema: pa.Schema = FEATURE_SCHEMA,
                   stage: str = STAGE) -> int:
    """Stream feature rows into a Parquet file atomically; returns the number of rows.

    `schema`/`stage`: another token stage's columns and name (the audio tokens share this file
    form, `ecem.features.audio`); the visual stage's by default."""
    schema = _schema_with_settings(settings, schema, stage)
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


def concat_features(parts: Sequence[str | Path], path: str | Path, settings: Mapping[str, Any],
                    schema: pa.Schema = FEATURE_SCHEMA, stage: str = STAGE) -> int:
    """Copy the shard files' rows, in order, into one Parquet file (streamed, row group by group)."""
    with_meta = _schema_with_settings(settings, schema, stage)
    n = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, with_meta) as writer:
            for part in parts:
                pf = pq.ParquetFile(part)
                for g in range(pf.num_row_groups):
                    table = pf.read_row_group(g).cast(schema)
                    if table.num_rows:
                        writer.write_table(table.replace_schema_metadata(with_meta.metadata))
                        n += table.num_rows
            if n == 0:
                writer.write_table(schema.empty_table().replace_schema_metadata(with_meta.metadata))
    return n


def _decode_tokens(blob: Any, shape: Sequence[int]) -> np.ndarray:
    return np.frombuffer(blob, dtype=TOKEN_DTYPE).reshape(tuple(int(s) for s in shape)).copy()


def load_tokens(path: str | Path, sample_ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """{sample_id: (T + N, D) float16 array} from a feature file or a directory of shard files.

    With `sample_ids`, only those are decoded; ids without features are absent from the result
    (compare its keys to what you asked for). Holds every token in memory: for training-sized
    sets use :class:`TokenStore`.
    """
    wanted = None if sample_ids is None else set(map(str, sample_ids))
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    out: dict[str, np.ndarray] = {}
    for file in files:  # row group by row group: memory is the result plus one group
        pf = pq.ParquetFile(file)
        for g in range(pf.num_row_groups):
            ids = pf.read_row_group(g, columns=["sample_id"]).column("sample_id").to_pylist()
            keep = [i for i, sid in enumerate(ids) if wanted is None or sid in wanted]
            if not keep:
                continue
            group = pf.read_row_group(g, columns=["tokens", "shape"])
            blobs, shapes = group.column("tokens"), group.column("shape")
            for i in keep:
                out[ids[i]] = _decode_tokens(blobs[i].as_buffer(), shapes[i].as_py())
    return out


def token_array_path(features_path: str | Path) -> Path:
    """Where the array form of a feature file lives: `clip.parquet` → `clip.tokens.npy`."""
    path = Path(features_path)
    return path.with_name(f"{path.stem}.tokens.npy")


def write_token_array(features_path: str | Path, out: str | Path | None = None) -> Path:
    """Copy a feature file's tokens into one `(rows, T+N, D)` float16 .npy in row order, streamed
    row group by row group (memory: one row group). Every row must have the same shape, which one
    feature file's shared layout guarantees; returns the array's path."""
    out = Path(out) if out is not None else token_array_path(features_path)
    pf = pq.ParquetFile(features_path)
    n = pf.metadata.num_rows
    shapes = pq.read_table(features_path, columns=["shape"]).column("shape").to_pylist()
    distinct = {tuple(s) for s in shapes}
    if len(distinct) > 1:
        raise ValueError(f"{features_path}: token shapes differ between rows: {sorted(distinct)[:3]}")
    shape = distinct.pop() if distinct else (0, 0)
    with atomic_path(out) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=TOKEN_DTYPE, shape=(n, *shape))
        row = 0
        for g in range(pf.num_row_groups):
            blobs = pf.read_row_group(g, columns=["tokens"]).column("tokens")
            for blob in blobs.chunks:
                for i in range(len(blob)):
                    array[row] = np.frombuffer(blob[i].as_buffer(), dtype=TOKEN_DTYPE).reshape(shape)
                    row += 1
        array.flush()
        del array
    return out


class TokenStore(Mapping[str, np.ndarray]):
    """{sample_id: (T + N, D) float16 array}, read from disk on each access.

    Backed by a feature file's token array (:func:`token_array_path`): opening reads only the
    Parquet `sample_id` column; `store[sid]` reads that sample's bytes with one `os.pread` into a
    fresh array. Nothing is memory-mapped, so the process's resident memory holds only the samples
    in use (the OS page cache may keep the file, but as reclaimable cache, not process memory).
    With `sample_ids`, the store holds only those (ids without features are absent).
    """

    def __init__(self, features_path: str | Path, sample_ids: Iterable[str] | None = None):
        self._fd: int | None = None
        self.path = token_array_path(features_path)
        ids = pq.read_table(features_path, columns=["sample_id"]).column("sample_id").to_pylist()
        header = np.load(self.path, mmap_mode="r")  # the header only: no page is touched
        shape, dtype, self._offset = header.shape, header.dtype, int(header.offset)
        del header
        if dtype != TOKEN_DTYPE or len(shape) != 3 or shape[0] != len(ids):
            raise ValueError(f"{self.path}: a {shape} {dtype} array does not hold the {len(ids)} rows "
                             f"of {features_path}; rerun the clip_features rule")
        self.shape: tuple[int, int] = (int(shape[1]), int(shape[2]))  # every sample's (T+N, D)
        self._row_bytes = self.shape[0] * self.shape[1] * TOKEN_DTYPE.itemsize
        wanted = None if sample_ids is None else set(map(str, sample_ids))
        self._rows = {sid: i for i, sid in enumerate(ids) if wanted is None or sid in wanted}

    def __getitem__(self, sample_id: str) -> np.ndarray:
        row = self._rows[sample_id]
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        data = os.pread(self._fd, self._row_bytes, self._offset + row * self._row_bytes)
        if len(data) != self._row_bytes:
            raise OSError(f"{self.path}: short read for {sample_id} (file truncated?)")
        return np.frombuffer(data, dtype=TOKEN_DTYPE).reshape(self.shape)

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._rows

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


def read_settings(path: str | Path, stage: str = STAGE) -> dict[str, Any]:
    """The settings a feature file was written with (model, layer, image size, layout, ...),
    checking it was written by `stage`."""
    record = decode_metadata(pq.read_schema(path).metadata, path)
    if record.get("stage") != stage:
        raise ValueError(f"{path} was written by stage {record.get('stage')!r}, not {stage!r}")
    return record["settings"]


def read_layout(path: str | Path) -> TokenLayout:
    """The token layout recorded in a feature file's metadata."""
    lay = read_settings(path)["layout"]
    return TokenLayout(int(lay["num_frames"]), int(lay["num_patches"]), int(lay["hidden_size"]))
