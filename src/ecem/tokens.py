"""The token file form both modalities share: how FAME-Net's video and audio inputs are stored.

One Parquet row per sample: ``tokens`` (float16, little-endian, C order, as bytes) and ``shape``
(the sample's token matrix), beside the columns each modality adds, with the stage's settings
(encoder, layout, ...) in the file's `ecem` schema metadata. What the tokens mean and the columns
are each modality's contract: video tokens (`results/features/clip.parquet`,
:mod:`ecem.features.video`) and audio tokens (`results/features/audio.parquet`,
:mod:`ecem.features.audio`). The feature stages write these files, FAME-Net reads them; neither
needs the other.

Beside each, the same tokens as one `(samples, rows, D)` float16 NumPy array in the Parquet file's
row order (`clip.tokens.npy`, `audio.tokens.npy`; :func:`write_token_array`). Training and
generation read that through :class:`TokenStore`, one sample at a time with a positioned read, so
their memory does not grow with the dataset: at the paper's 356 × 1024 video tokens, decoding
every Parquet blob into arrays held 4.1–4.4× the tokens' bytes for the whole run (16 GB for ECEM's
train + val). :func:`load_tokens` (everything in memory) stays for small files and tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ecem.artifacts import atomic_path, decode_metadata, encode_metadata, require_columns

TOKEN_DTYPE = np.dtype("<f2")  # float16, little-endian, the stored token type
PADDING_NONE = "none"  # as many real frames (video) or encoder frames (audio) as tokens, or more
PADDING_ZEROS_AFTER = "zeros_after"  # fewer: zero rows follow the real tokens


def _schema_with_settings(settings: Mapping[str, Any], schema: pa.Schema, stage: str) -> pa.Schema:
    return schema.with_metadata(encode_metadata(stage, settings))


def write_features(rows: Iterable[dict[str, Any]], path: str | Path, settings: Mapping[str, Any], *,
                   schema: pa.Schema, stage: str, rows_per_group: int = 32) -> int:
    """Stream token rows into a Parquet file atomically; returns the number of rows.

    `schema` and `stage`: the modality's columns and stage name (`ecem.features.video`,
    `ecem.features.audio`); a row with other columns than `schema`'s is refused."""
    schema = _schema_with_settings(settings, schema, stage)
    n = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            buf: list[dict[str, Any]] = []
            for row in rows:
                require_columns(row, schema, path)
                buf.append(row)
                if len(buf) >= rows_per_group:
                    writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                    n += len(buf)
                    buf = []
            if buf or n == 0:
                writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                n += len(buf)
    return n


def concat_features(parts: Sequence[str | Path], path: str | Path, settings: Mapping[str, Any], *,
                    schema: pa.Schema, stage: str) -> int:
    """Copy the shard files' rows, in order, into one Parquet file (streamed, row group by group)."""
    with_meta = _schema_with_settings(settings, schema, stage)
    n = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, with_meta) as writer:
            for part in parts:
                pf = pq.ParquetFile(part)
                require_columns(pf.schema_arrow.names, schema, part)
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
    """{sample_id: token matrix (float16)} from a token file or a directory of shard files.

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
    """Where the array form of a token file lives: `clip.parquet` → `clip.tokens.npy`."""
    path = Path(features_path)
    return path.with_name(f"{path.stem}.tokens.npy")


def write_token_array(features_path: str | Path, out: str | Path | None = None) -> Path:
    """Copy a token file's tokens into one `(rows, *shape)` float16 .npy in row order, streamed
    row group by row group (memory: one row group). Every row must have the same shape, which one
    token file's shared layout guarantees; returns the array's path."""
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
    """{sample_id: token matrix (float16)}, read from disk on each access.

    Backed by a token file's array (:func:`token_array_path`): opening reads only the
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
                             f"of {features_path}; rerun the rule that wrote them "
                             "(clip_features or audio_features)")
        self.shape: tuple[int, int] = (int(shape[1]), int(shape[2]))  # every sample's (rows, D)
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


def read_settings(path: str | Path, stage: str) -> dict[str, Any]:
    """The settings a token file was written with (model, layout, ...), checking it was written
    by `stage`."""
    record = decode_metadata(pq.read_schema(path).metadata, path)
    if record.get("stage") != stage:
        raise ValueError(f"{path} was written by stage {record.get('stage')!r}, not {stage!r}")
    return record["settings"]
