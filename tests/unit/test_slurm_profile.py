"""profiles/slurm/config.yaml as Snakemake reads it (YTE + the profile parser), per environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from snakemake.profiles import ProfileConfigFileParser

from tests.helpers import REPO

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"


def parse(monkeypatch, **env: str) -> dict:
    for var in ("ECEM_SLURM_ACCOUNT", "ECEM_SLURM_PARTITION", "ECEM_SLURM_GPU_PARTITION"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with open(PROFILE) as stream:
        return dict(ProfileConfigFileParser().parse(stream))


def gpu_capable_rules() -> set[str]:
    """Rules whose resources declare `gpu=` in workflow/rules/*.smk."""
    rules = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=\s*rule \w+:)", smk.read_text()):
            match = re.match(r"\s*rule (\w+):", block)
            if match and re.search(r"^\s+gpu=", block, flags=re.M):
                rules.add(match.group(1))
    return rules


def all_rules() -> set[str]:
    names = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        names |= set(re.findall(r"^\s*rule (\w+):", smk.read_text(), flags=re.M))
    return names


def test_placeholders_leave_account_and_cpu_partition_to_the_plugin(monkeypatch):
    args = parse(monkeypatch)
    assert args["executor"] == "slurm"
    assert "slurm-no-account" not in args
    assert not any(a.startswith(("slurm_account=", "slurm_partition=")) for a in args["default-resources"])
    assert "runtime=30m" in args["default-resources"]  # runtime carries its unit
    assert args["rerun-incomplete"] == "True" and args["retries"] == "1"


def test_environment_sets_account_and_partitions(monkeypatch):
    args = parse(monkeypatch, ECEM_SLURM_ACCOUNT="lab42", ECEM_SLURM_PARTITION="short",
                 ECEM_SLURM_GPU_PARTITION="a100")
    assert "slurm_account=lab42" in args["default-resources"]
    assert "slurm_partition=short" in args["default-resources"]
    assert "fame_train:slurm_partition=a100" in args["set-resources"]
    assert parse(monkeypatch, ECEM_SLURM_ACCOUNT="none")["slurm-no-account"] == "True"


def test_every_gpu_capable_rule_goes_to_the_gpu_partition_and_the_config_says_how_many(monkeypatch):
    settings = parse(monkeypatch, ECEM_SLURM_GPU_PARTITION="gpuq")["set-resources"]
    routed = {entry.split(":")[0] for entry in settings}
    gpu_rules = gpu_capable_rules()
    assert gpu_rules and gpu_rules <= routed, f"GPU rules missing from the profile: {gpu_rules - routed}"
    assert routed <= all_rules(), f"the profile names unknown rules: {routed - all_rules()}"
    for rule in routed:
        assert f"{rule}:slurm_partition=gpuq" in settings
    assert not [entry for entry in settings if ":gpu=" in entry]  # counts come from the config


@pytest.mark.parametrize("rule", ["resolve_annotations", "render_clips", "gather_clips"])
def test_cpu_rules_are_not_sent_to_the_gpu_partition(monkeypatch, rule):
    settings = parse(monkeypatch)["set-resources"]
    assert not any(entry.startswith(f"{rule}:") for entry in settings)


def test_profile_is_not_in_the_science_config():
    config = (REPO / "config.yaml").read_text()
    assert not re.search(r"^\s*(slurm\w*|\w*partition|\w*account)\s*:", config, flags=re.I | re.M)
    assert Path(PROFILE).exists()
