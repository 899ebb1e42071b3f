"""The workflow on a real SLURM: profiles/slurm through snakemake-executor-plugin-slurm.

The test starts a single-node SLURM (slurmctld, slurmd, slurmdbd + MariaDB, munge; loopback only,
see tests/slurm_cluster.py), installing Debian's packages first when they are missing (root), runs
the demo workflow with `--workflow-profile profiles/slurm` (test override: the cluster's account
and partitions through the profile's ECEM_SLURM_* variables, a short first status check), and
checks that every job went through sbatch (sacct), that GPU-capable rules landed on the GPU
partition with the GPUs their config section asks for (none when it says CPU) and CPU rules did
not, and that the results equal the local run's (`demo_run`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pandas as pd
import pytest
import yaml

from ecem.artifacts import read_table
from tests.helpers import REPO, SNAKEMAKE, parse_job_stats, write_config
from tests.slurm_cluster import ACCOUNT, CPU_PARTITION, GPU_PARTITION, SlurmCluster, SlurmUnavailable

pytestmark = [pytest.mark.integration, pytest.mark.slurm]

PROFILE = REPO / "profiles" / "slurm"
# What the SLURM run builds. By default every stage up to one FAME-Net experiment's predictions
# (about 25 jobs: each kind of rule but the evaluation, which scores all runs in one job; every GPU
# rule of FAME-Net, every shard); ECEM_SLURM_TEST_TARGETS=all runs rule
# `all` (about 50 jobs; each SLURM job pays a few seconds of Snakemake start-up twice, so on 2 cores
# that roughly doubles the test's time).
SLICE = [
    "results/ecem/quality.json",
    "results/transcripts.parquet",
    "results/quality/transcribe.json",
    "results/features/clip.parquet",
    "results/features/faces.parquet",
    "results/features/face_summary.parquet",
    "results/runs/V+T+E/predictions.parquet",
]
TARGETS: list[str] = [] if os.environ.get("ECEM_SLURM_TEST_TARGETS") == "all" else SLICE
RUN_LIMIT_S = 1500


@pytest.fixture(scope="module")
def cluster():
    try:
        with SlurmCluster() as running:
            yield running
    except SlurmUnavailable as err:
        if os.geteuid() != 0:  # a developer's plain `pytest`; CI runs as root and runs this test
            pytest.skip(f"the SLURM test installs and starts a cluster, which needs root: {err}")
        pytest.fail(f"cannot run a SLURM cluster on this machine: {err}", pytrace=False)


# FAME-Net asks for one GPU (train/generate run on CUDA when they see it, else on the CPU, as on
# this cluster's count-only GPUs); the other stages keep the demo's `device: cpu`.
GPU_CONFIG = {"train": {"num_gpus": 1}, "generate": {"num_gpus": 1}}
GPU_BY_CONFIG = {"fame_train", "fame_generate"}


def gpu_rules() -> set[str]:
    """Rules the profile sends to the GPU partition (read from the profile itself)."""
    text = (PROFILE / "config.yaml").read_text()
    return set(yaml.safe_load(text)["set-resources"])


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """Working directory of the demo workflow run through SLURM, plus its log and duration."""
    workdir = tmp_path_factory.mktemp("slurm_run")
    env = {**cluster.env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           # the test override: this cluster's account and partitions (placeholders in the profile)
           "ECEM_SLURM_ACCOUNT": ACCOUNT, "ECEM_SLURM_PARTITION": CPU_PARTITION,
           "ECEM_SLURM_GPU_PARTITION": GPU_PARTITION}
    config = write_config(workdir / "slurm.yaml", GPU_CONFIG)
    cmd = ["timeout", "-s", "INT", "-k", "30", str(RUN_LIMIT_S),
           SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--workflow-profile", str(PROFILE), "--configfile", str(config),
           "--slurm-init-seconds-before-status-checks", "3", *TARGETS]
    start = time.monotonic()
    # A hung plugin ignores SIGTERM but stops on SIGINT: hence `timeout -s INT`.
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    elapsed = time.monotonic() - start
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"snakemake through SLURM failed ({proc.returncode}, {elapsed:.0f}s):\n"
                    f"{log[-6000:]}\n--- cluster logs ---\n{cluster.logs()[-4000:]}")
    return {"workdir": workdir, "log": log, "seconds": elapsed}


@pytest.fixture(scope="module")
def jobs(cluster, slurm_run):
    """sacct's record of this run's jobs: one dict per SLURM job, with the rule it ran."""
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)",
                                slurm_run["log"]))
    records = cluster.sacct("JobID", "JobName", "Partition", "Account", "State", "AllocTRES",
                            "Comment", "ExitCode")
    for rec in records:
        rec["rule"] = re.sub(r"^rule_(.+?)(_wildcards_.*)?$", r"\1", rec["Comment"])
    return {"submitted": submitted, "records": records}


def test_every_job_went_through_sbatch_and_completed(jobs, slurm_run):
    records, submitted = jobs["records"], jobs["submitted"]
    assert submitted, slurm_run["log"][-3000:]
    assert {r["JobID"] for r in records} == set(submitted.values())  # sacct knows every job
    assert {r["State"] for r in records} == {"COMPLETED"}
    assert {r["ExitCode"] for r in records} == {"0:0"}
    assert {r["Account"] for r in records} == {ACCOUNT}
    # Snakemake ran no rule itself: every planned job (except the target-only rule `all`) is a
    # SLURM job, once (no retries were needed).
    planned = {rule: n for rule, n in parse_job_stats(slurm_run["log"]).items() if rule != "all"}
    ran: dict[str, int] = {}
    for rec in records:
        ran[rec["rule"]] = ran.get(rec["rule"], 0) + 1
    assert ran == planned


def test_gpu_capable_rules_get_the_gpus_their_config_asks_for_and_cpu_rules_none(jobs):
    gpu = gpu_rules()
    ran = {r["rule"] for r in jobs["records"]}
    for rec in jobs["records"]:
        if rec["rule"] in gpu:
            assert rec["Partition"] == GPU_PARTITION, rec
            # The config asks FAME-Net for one GPU; the other GPU-capable stages run on the CPU.
            wants = rec["rule"] in GPU_BY_CONFIG
            assert ("gres/gpu=1" in rec["AllocTRES"]) is wants, rec
        else:
            assert rec["Partition"] == CPU_PARTITION and "gres/gpu" not in rec["AllocTRES"], rec
    assert ran - gpu, "no CPU rule ran"
    assert GPU_BY_CONFIG <= ran


# Deterministic artifacts compared with the local run (same config, same thread counts):
# the dataset tables (exact), transcripts (faster-whisper int8 on CPU, greedy/beam search is
# deterministic), video tokens of the bundled DINOv2, face detections/expressions
# (MTCNN + FER CNN), the V+T+E predictions of the seeded FAME-Net run.
# Compared with a float tolerance only, because BLAS reductions may differ in the last bits.
# Excluded: logs, benchmarks, run cards and metrics' timing fields (wall-clock times, host).
TABLES = [
    "results/ecem/annotations.parquet",
    "results/ecem/utterances.parquet",
    "results/ecem/segments.parquet",
    "results/ecem/clips.parquet",
    "results/transcripts.parquet",
    "results/features/clip.parquet",
    "results/features/faces.parquet",
    "results/features/face_summary.parquet",
    "results/runs/V+T+E/predictions.parquet",
]


@pytest.mark.parametrize("table", TABLES)
def test_slurm_tables_equal_the_local_run(slurm_run, demo_run, table):
    remote, local = read_table(slurm_run["workdir"] / table), read_table(demo_run / table)
    assert len(local) > 0
    pd.testing.assert_frame_equal(remote, local, check_exact=False, rtol=1e-5, atol=1e-6)


def test_slurm_reports_equal_the_local_run(slurm_run, demo_run):
    for name in ("results/ecem/quality.json", "results/quality/transcribe.json"):
        assert (slurm_run["workdir"] / name).read_text() == (demo_run / name).read_text(), name
    remote = json.loads((slurm_run["workdir"] / "results/runs/V+T+E/run_card.json").read_text())
    local = json.loads((demo_run / "results/runs/V+T+E/run_card.json").read_text())
    assert _numbers(remote["training"]) == pytest.approx(_numbers(local["training"]), rel=1e-5)


def _numbers(obj, prefix=""):
    """Flatten the numeric leaves of a JSON document, skipping timing fields and the GPU counts
    this run asks for (GPU_CONFIG) where the local run asked for none."""
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() if not re.search(r"time|seconds|_s$|^num_gpus$", key)
                for k, v in _numbers(val, f"{prefix}/{key}").items()}
    if isinstance(obj, list):
        return {k: v for i, val in enumerate(obj) for k, v in _numbers(val, f"{prefix}/{i}").items()}
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return {prefix: obj}
    return {}
