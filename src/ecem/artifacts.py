"""Reading and writing the pipeline's artifacts: atomic writes, settings in Parquet metadata.

Every Parquet artifact carries `{"stage": ..., "settings": {...}}` as JSON under the schema
metadata key `ecem`, so a reader can check which settings produced the file. Their columns are
the contract in workflow/schemas/artifacts/columns.yaml (checked by `column_problems`); where a
stage declares its columns as a pyarrow schema, that schema is the source (columns.yaml must name
the same columns and type families, :func:`schema_columns`, a unit test checks it) and a write
with other columns is refused (:func:`require_columns`). Writes
go to a temporary file in the same directory and are renamed into place, so a killed job never
leaves a half-written file that looks complete; the temporary file of a writer killed outright
(SIGKILL leaves no chance to delete it) is removed by the next write of the same artifact. A
write that fails because of the machine (disk full, I/O error) raises
:class:`ecem.faults.EnvironmentFault` naming the artifact.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecem.faults import EnvironmentFault, environment_cause

log = logging.getLogger(__name__)
METADATA_KEY = b"ecem"


def _default_file_mode() -> int:
    """What `open()` would give a new file under the process umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


PART = ".part"  # marks the temporary file or folder of an unfinished write


def _remove_stale_parts(path: Path, suffix: str) -> None:
    """Delete what writers of `path` killed before they could clean up left beside it (one job
    writes an artifact at a time, so no live writer's file is touched)."""
    stale = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}" + re.escape(f"{PART}{suffix}"))
    for entry in path.parent.iterdir():
        if stale.fullmatch(entry.name):
            log.info("removing %s, left by a writer that was killed", entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


@contextlib.contextmanager
def _machine_faults_named(path: Path) -> Iterator[None]:
    """Re-raise a fault of the machine inside the block as EnvironmentFault naming `path` (or
    the file the error names); other errors pass unchanged."""
    try:
        yield
    except (OSError, MemoryError) as exc:
        cause = environment_cause(exc)
        if cause is None or isinstance(exc, EnvironmentFault):
            raise
        raise EnvironmentFault(cause, getattr(exc, "filename", None) or path, f"writing {path.name}") from exc


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    suffix = path.suffix or ".tmp"
    with _machine_faults_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(path, suffix)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{PART}{suffix}", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            if tmp_path.is_file():
                os.chmod(tmp_path, _default_file_mode())
            os.replace(tmp_path, path)
        finally:
            if tmp_path.exists() or tmp_path.is_symlink():
                tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a staging directory beside `path`; it replaces `path` only if the block succeeds, so
    a killed build never leaves a half-written directory (e.g. a model) behind."""
    path = Path(path)
    with _machine_faults_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(path, "")
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=PART, dir=path.parent))
        try:
            yield tmp
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)


def recorded_path(path: str | Path, base_dir: str | Path = ".") -> Path:
    """A path an artifact records (a clip, a segment) as seen from `base_dir`, the workflow's
    working directory: artifacts record paths relative to it, or absolute ones (a user's input)."""
    p = Path(path)
    return p if p.is_absolute() else Path(base_dir) / p


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically, keys sorted so reruns give identical bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")


def write_table(
    data: pd.DataFrame | pa.Table,
    path: str | Path,
    stage: str,
    settings: Mapping[str, Any] | None = None,
    schema: pa.Schema | None = None,
) -> None:
    """Write a Parquet artifact atomically with the producing stage's settings in its metadata;
    with a `schema`, a DataFrame must have exactly its columns (:func:`require_columns`)."""
    if isinstance(data, pd.DataFrame):
        if schema is not None:
            require_columns(data.columns, schema, path)
        table = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
    else:
        table = data
    meta = dict(table.schema.metadata or {})
    meta.pop(b"pandas", None)  # pandas' index bookkeeping only adds noise to our artifacts
    table = table.replace_schema_metadata({**meta, **encode_metadata(stage, settings or {})})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_table(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet artifact into pandas, through Arrow's own file access.

    Use this, not `pd.read_parquet`: pandas opens a local path as a Python file object, which
    Arrow's I/O threads then read and release. A pool thread that still needs the GIL while the
    interpreter exits is ended by CPython with `pthread_exit`, whose unwinding through Arrow's
    `noexcept` thread entry calls `std::terminate` — the rare "terminate called without an active
    exception" abort at exit (exit 134) that made Snakemake fail a job after it had written its
    outputs. Given a path string, Arrow reads the file natively and no Python object crosses
    into its threads.
    """
    return pq.read_table(str(path), columns=columns).to_pandas()


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Return the `{"stage", "settings"}` record a Parquet artifact was written with."""
    return decode_metadata(pq.read_schema(path).metadata, path)


def encode_metadata(stage: str, settings: Mapping[str, Any]) -> dict[bytes, bytes]:
    """The schema metadata entry that records the producing stage and its settings."""
    record = {"stage": stage, "settings": dict(settings)}
    return {METADATA_KEY: json.dumps(record, sort_keys=True, default=str).encode()}


def decode_metadata(meta: Mapping[bytes, bytes] | None, path: str | Path) -> dict[str, Any]:
    """`{"stage", "settings"}` from a file's schema metadata; ValueError when it has none."""
    if not meta or METADATA_KEY not in meta:
        raise ValueError(f"{path} carries no ECEM stage metadata (not written by this pipeline?)")
    return json.loads(meta[METADATA_KEY])


_FAMILIES = {
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "int": pa.types.is_integer,
    "float": pa.types.is_floating,
    "bool": pa.types.is_boolean,
    "list": lambda t: pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t),
    "binary": lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t),
}


def type_family(kind: pa.DataType) -> str:
    """The contract's type family of an Arrow type (`string`, `int`, ... as in columns.yaml)."""
    for family, matches in _FAMILIES.items():
        if matches(kind):
            return family
    raise ValueError(f"no column contract type family for Arrow type {kind}")


def schema_columns(schema: pa.Schema) -> dict[str, str]:
    """`{column: type family}` of a stage's pyarrow schema: its entry in columns.yaml."""
    return {field.name: type_family(field.type) for field in schema}


def require_columns(columns: Iterable[str], schema: pa.Schema, artifact: str | Path) -> None:
    """Refuse to write `artifact` unless its columns are exactly those of its contract `schema`.

    Arrow, given a schema, fills a missing column with nulls and drops an unknown one without a
    word; a renamed or forgotten column would then reach the next stage as data. Arrow's own
    conversion to the schema refuses values of the wrong type."""
    have = list(columns)
    missing = [name for name in schema.names if name not in have]
    unknown = [name for name in have if name not in schema.names]
    if missing or unknown:
        problems = [f"column {name!r} is missing" for name in missing]
        problems += [f"column {name!r} is not in its contract" for name in unknown]
        raise ValueError(f"{artifact}: not written, its columns break the contract: {'; '.join(problems)}")


def column_problems(path: str | Path, columns: Mapping[str, str]) -> list[str]:
    """How a Parquet file breaks its column contract (`{column: type family}`, see
    workflow/schemas/artifacts/columns.yaml): missing columns and columns of the wrong family.
    A column whose values are all missing may have Arrow's null type."""
    schema = pq.read_schema(path)
    problems = []
    for name, family in columns.items():
        if family not in _FAMILIES:
            raise ValueError(f"unknown type family {family!r} for column {name!r}")
        if name not in schema.names:
            problems.append(f"{path}: column {name!r} is missing")
            continue
        kind = schema.field(name).type
        if not (pa.types.is_null(kind) or _FAMILIES[family](kind)):
            problems.append(f"{path}: column {name!r} is {kind}, not {family}")
    return problems
