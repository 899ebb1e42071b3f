"""Atomic artifact writes with stage settings in the Parquet metadata."""

import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from ecem.artifacts import (
    atomic_path,
    column_problems,
    read_metadata,
    read_table,
    recorded_path,
    schema_columns,
    write_json,
    write_table,
)
from tests.helpers import REPO


def test_table_round_trip_keeps_settings(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": [[1, 2], []]})
    write_table(df, tmp_path / "x" / "t.parquet", "dataset", {"seed": 3})
    back = read_table(tmp_path / "x" / "t.parquet")
    assert back["a"].tolist() == [1, 2] and [list(v) for v in back["b"]] == [[1, 2], []]
    assert read_metadata(tmp_path / "x" / "t.parquet") == {"stage": "dataset", "settings": {"seed": 3}}


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_json_is_deterministic(tmp_path):
    write_json({"b": 1, "a": [1]}, tmp_path / "a.json")
    write_json({"a": [1], "b": 1}, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_foreign_parquet_has_no_metadata(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "f.parquet")
    with pytest.raises(ValueError, match="no ECEM stage metadata"):
        read_metadata(tmp_path / "f.parquet")


def test_artifacts_get_ordinary_permissions(tmp_path):
    write_json({"a": 1}, tmp_path / "a.json")
    assert (tmp_path / "a.json").stat().st_mode & 0o044 == 0o044  # group/other can read


def test_reading_parquet_never_aborts_the_process_at_exit(tmp_path):
    # pd.read_parquet aborted ~1 in 10 processes here at exit ("terminate called without an
    # active exception"); read_table gives Arrow the path, so no Python file object reaches
    # its I/O threads. 20 fresh interpreters, each must exit 0.
    path = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"sample_id": [f"train/dia{i}_utt0" for i in range(50)],
                              "text": ["words"] * 50, "x": range(50)}), path, "test")
    script = f"from ecem.artifacts import read_table; read_table({str(path)!r})"
    codes = [subprocess.run([sys.executable, "-c", script], capture_output=True).returncode
             for _ in range(20)]
    assert codes == [0] * 20


def test_column_contract_names_missing_and_mistyped_columns(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"sample_id": ["a"], "n": [1.5], "text": [None], "segs": [[1, 2]]}), path, "test")
    contract = {"sample_id": "string", "n": "int", "text": "string", "segs": "list", "cause": "string"}
    assert column_problems(path, contract) == [
        f"{path}: column 'n' is double, not int", f"{path}: column 'cause' is missing"]
    assert column_problems(path, {"sample_id": "string", "text": "string", "segs": "list"}) == []
    with pytest.raises(ValueError, match="type family"):
        column_problems(path, {"n": "number"})


def test_a_table_breaking_its_contract_is_refused_naming_the_column(tmp_path):
    schema = pa.schema([("sample_id", pa.string()), ("n", pa.int64())])
    path = tmp_path / "t.parquet"
    with pytest.raises(ValueError, match=r"t\.parquet: not written.*column 'n' is missing"):
        write_table(pd.DataFrame({"sample_id": ["a"]}), path, "test", schema=schema)
    with pytest.raises(ValueError, match="column 'count' is not in its contract"):
        write_table(pd.DataFrame({"sample_id": ["a"], "n": [1], "count": [2]}), path, "test", schema=schema)
    assert not path.exists()
    write_table(pd.DataFrame({"n": [1], "sample_id": ["a"]}), path, "test", schema=schema)  # any order
    assert read_table(path).columns.tolist() == ["sample_id", "n"]


def test_columns_yaml_names_the_columns_of_every_stage_schema():
    # The stages' pyarrow schemas are the source; columns.yaml (what the integration tests check
    # every artifact of a run against) must say the same.
    from ecem.faces.stage import FACES_SCHEMA
    from ecem.features import audio, video
    from ecem.transcribe import stage as transcribe

    contracts = yaml.safe_load((REPO / "workflow/schemas/artifacts/columns.yaml").read_text())
    for artifact, schema in [("results/features/clip.parquet", video.SCHEMA),
                             ("results/features/audio.parquet", audio.SCHEMA),
                             ("results/features/faces.parquet", FACES_SCHEMA),
                             ("results/transcripts.parquet", transcribe.SCHEMA),
                             ("results/transcribe/shard-*.parquet", transcribe.SCHEMA)]:
        assert contracts[artifact] == schema_columns(schema), artifact


def test_schema_columns_gives_the_contract_type_families():
    schema = pa.schema([("s", pa.large_string()), ("i", pa.int32()), ("f", pa.float32()), ("b", pa.bool_()),
                        ("l", pa.list_(pa.float32(), 4)), ("t", pa.large_binary())])
    assert schema_columns(schema) == {"s": "string", "i": "int", "f": "float", "b": "bool", "l": "list",
                                      "t": "binary"}
    with pytest.raises(ValueError, match="no column contract type family"):
        schema_columns(pa.schema([("m", pa.map_(pa.string(), pa.int64()))]))


def test_recorded_paths_are_relative_to_the_working_directory_unless_absolute(tmp_path):
    assert recorded_path("results/ecem/x.mp4", tmp_path) == tmp_path / "results/ecem/x.mp4"
    assert recorded_path("/data/meld/y.mp4", tmp_path).as_posix() == "/data/meld/y.mp4"
    assert recorded_path("a.mp4").as_posix() == "a.mp4"  # the working directory itself
