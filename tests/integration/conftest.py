"""One real run of the whole demo workflow per test session, shared by the integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_snakemake


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Working directory of a complete `snakemake --cores 2` run on the demo config."""
    workdir = tmp_path_factory.mktemp("demo_run")
    run_snakemake(workdir)
    return workdir
