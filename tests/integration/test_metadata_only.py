"""The metadata-only path: with the three MELD CSVs and the ECEM JSON alone (no clip folders), the
annotation join, the split, the dataset statistics and the text baselines with their metrics run,
and a target that needs the clips names what is missing and the target that needed it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import parse_job_stats, run_snakemake, write_config

pytestmark = pytest.mark.integration

METADATA_TARGETS = ("results/runs/template/metrics.json", "results/runs/retrieval/metrics.json",
                    "results/ecem/statistics.json")


@pytest.fixture()
def tables_only(demo_run: Path, tmp_path: Path) -> Path:
    """A config on the demo's CSVs and JSON copied without their clips (lexical metrics only, to
    keep the test short: the embedding metrics take the same path)."""
    root = tmp_path / "MELD.Raw"
    root.mkdir()
    for csv in (demo_run / "resources/demo/MELD.Raw").glob("*.csv"):
        shutil.copy(csv, root / csv.name)
    annotations = tmp_path / "ecem.json"
    shutil.copy(demo_run / "resources/demo/ecem_annotations.json", annotations)
    return write_config(tmp_path / "my.yaml", {
        "demo": {"enabled": False}, "meld": {"root": str(root)}, "ecem": {"annotations": str(annotations)},
        "evaluate": {"metrics": ["bleu4", "rouge_l", "cider"]}})


def test_metadata_targets_run_without_any_clip(tmp_path: Path, tables_only: Path):
    work = tmp_path / "work"
    work.mkdir()
    proc = run_snakemake(work, *METADATA_TARGETS, "--configfile", str(tables_only))
    jobs = parse_job_stats(proc.stdout + proc.stderr)
    assert set(jobs) == {"resolve_annotations", "split_samples", "dataset_statistics", "evaluate_baseline",
                         "evaluate_metrics"}, jobs
    for run in ("template", "retrieval"):
        metrics = json.loads((work / f"results/runs/{run}/metrics.json").read_text())
        assert metrics["n_samples"] > 0 and metrics["metrics"]["bleu4"]["status"] == "ok"
    stats = json.loads((work / "results/ecem/statistics.json").read_text())
    assert stats["samples"] > 0 and set(stats["by_split"]) == {"train", "val", "test"}


def test_a_target_that_needs_the_clips_names_what_is_missing(tmp_path: Path, tables_only: Path):
    proc = run_snakemake(tmp_path, "results/ecem/utterances.parquet", "--configfile", str(tables_only),
                         check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Missing input: config key 'meld.splits.train.videos'" in out
    assert "needed for results/ecem/utterances.parquet" in out
