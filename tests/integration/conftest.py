"""The two real workflow runs the integration tests share (each at most once per test session):

- `demo_run`: the README's demo, `snakemake --cores 2` on config.yaml (real models, ~6 minutes);
- `smoke_run`: config/smoke.yaml (a 24-sample rehearsal corpus, tiny random models) up to
  `SMOKE_TARGETS`, about a minute: what the SLURM test compares its run with, and what tests that
  only need a small finished run (the rehearsal corpus checks) read.
Tests that change a finished run work on copies (`copy_run`), never on these directories.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SMOKE, SMOKE_TARGETS, run_snakemake


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Working directory of a complete `snakemake --cores 2` run on the demo config."""
    workdir = tmp_path_factory.mktemp("demo_run")
    run_snakemake(workdir)
    return workdir


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Working directory of a local run of config/smoke.yaml up to SMOKE_TARGETS."""
    workdir = tmp_path_factory.mktemp("smoke_run")
    run_snakemake(workdir, *SMOKE_TARGETS, "--configfile", str(SMOKE))
    return workdir
