"""Every Parquet artifact of a demo run meets its column contract
(workflow/schemas/artifacts/columns.yaml), and no artifact goes without one."""

from __future__ import annotations

import pytest

from tests.helpers import artifact_problems

pytestmark = pytest.mark.integration


def test_every_demo_artifact_meets_its_column_contract(demo_run):
    assert list((demo_run / "results").rglob("*.parquet"))
    assert artifact_problems(demo_run) == []
