"""Shared test helpers: where the repository is, how to run snakemake on it, artifact contracts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SMOKE = REPO / "config" / "smoke.yaml"
# What the shared smoke run builds (tests/integration/conftest.py): the dataset stage and one
# FAME-Net experiment's predictions — every kind of job from the corpus to generation, GPU-capable
# ones among them (video features, training, generation) — and nothing the tests do not read.
SMOKE_TARGETS = ("results/ecem/quality.json", "results/runs/V/predictions.parquet")


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1800,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the repository's workflow in `workdir` (results/ and resources/ land there), with
    `env` added to the environment."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                    f"{proc.stderr[-8000:]}")
    return proc


def parse_job_stats(log: str) -> dict[str, int]:
    """Snakemake's planned {rule: job count} from the "Job stats:" table of its output."""
    if "Job stats:" not in log:
        return {}
    jobs: dict[str, int] = {}
    for line in log.split("Job stats:")[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Dry-run the workflow in `workdir` and return {rule: job count} from Snakemake's Job stats."""
    return parse_job_stats(run_snakemake(workdir, "-n", *args).stdout)


def deep_merge(base: dict, over: dict) -> dict:
    """Merge `over` into `base` in place, as Snakemake merges a --configfile over config.yaml."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def write_config(path: Path, edit: dict) -> Path:
    """Write the demo config with `edit` deep-merged over it (for dry-run rerun checks)."""
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    deep_merge(config, edit)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def artifact_problems(workdir: Path) -> list[str]:
    """Every Parquet file under `workdir/results` checked against its column contract in
    workflow/schemas/artifacts/columns.yaml; a file that no contract names is a problem too."""
    import re

    import yaml

    from ecem.artifacts import column_problems

    contracts = yaml.safe_load((REPO / "workflow/schemas/artifacts/columns.yaml").read_text())
    patterns = {key: re.compile("[^/]*".join(map(re.escape, key.split("*")))) for key in contracts}
    problems = []
    for path in sorted((workdir / "results").rglob("*.parquet")):
        rel = str(path.relative_to(workdir))
        matches = [key for key, rx in patterns.items() if rx.fullmatch(rel)]
        if len(matches) != 1:
            problems.append(f"{rel}: {len(matches)} column contracts match it ({matches})")
            continue
        problems += column_problems(path, contracts[matches[0]])
    return problems


def copy_run(src: Path, dest: Path, link_models: bool = True) -> Path:
    """A working copy of a finished run (results, resources, Snakemake's records) that a test may
    change; the built models are linked instead of copied unless `link_models` is false (a test
    that rebuilds one must not touch the original)."""
    import shutil

    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("models") if link_models else None)
    models = src / "resources" / "models"
    if link_models and models.exists():
        (dest / "resources" / "models").symlink_to(models, target_is_directory=True)
    return dest
