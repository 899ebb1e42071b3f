"""The two real workflow runs the integration tests share (each at most once per test session):

- `demo_run`: the README's demo, `snakemake --cores 2` on config.yaml (real models, ~6 minutes);
- `smoke_run`: config/smoke.yaml (a 24-sample rehearsal corpus, tiny random models) up to
  `SMOKE_TARGETS`, about a minute: what the SLURM test compares its run with, and what tests that
  only need a small finished run (the rehearsal corpus checks) read.
Tests that change a finished run work on copies (`copy_run`), never on these directories.

The suite runs on two pytest-xdist workers (`-n 2 --dist loadgroup`, pyproject.toml): every test
that uses one of these runs is sent to one worker, so each run is made once, and the other worker
takes the rest of the suite meanwhile (a workflow run leaves cores idle while it waits on
sbatch, model loading or a single-threaded job).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.nodeid import coerce_node_id

from tests.helpers import SMOKE, SMOKE_TARGETS, run_snakemake


SHARED_RUNS = ("demo_run", "smoke_run")  # session fixtures each worth one worker's whole session


def pytest_itemcollected(item: pytest.Item) -> None:
    """Group the tests of each shared run on one xdist worker (the first run a test uses decides).

    `--dist loadgroup` schedules by a `@group` suffix of the test's node id. pytest-xdist 3.8 adds
    it by setting `item._nodeid`, which pytest 9.2 no longer reads (the id lives in `item._id`), so
    its `xdist_group` marks group nothing here; the suffix is added directly, as xdist means to.
    """
    run = next((name for name in SHARED_RUNS if name in getattr(item, "fixturenames", ())), None)
    if run:
        item._id = coerce_node_id(f"{item.nodeid}@{run}")


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
