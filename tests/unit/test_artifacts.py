"""Atomic artifact writes with stage settings in the Parquet metadata."""

import subprocess
import sys

import pandas as pd
import pytest

from ecem.artifacts import (
    atomic_path,
    column_problems,
    read_metadata,
    read_table,
    recorded_path,
    write_json,
    write_table,
)


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


def test_recorded_paths_are_relative_to_the_working_directory_unless_absolute(tmp_path):
    assert recorded_path("results/ecem/x.mp4", tmp_path) == tmp_path / "results/ecem/x.mp4"
    assert recorded_path("/data/meld/y.mp4", tmp_path).as_posix() == "/data/meld/y.mp4"
    assert recorded_path("a.mp4").as_posix() == "a.mp4"  # the working directory itself
