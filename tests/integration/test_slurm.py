"""The workflow on a real SLURM: profiles/slurm through snakemake-executor-plugin-slurm.

The test starts a single-node SLURM (slurmctld, slurmd, slurmdbd + MariaDB, munge; loopback only,
see tests/slurm_cluster.py), installing Debian's packages first when they are missing (root), and
resumes, through `--workflow-profile profiles/slurm`, a copy of the local smoke run (config/smoke.yaml:
a small generated corpus, tiny random models; what the profile and the executor do does not depend
on the models' size) whose video features, tiny LLM and FAME-Net run were removed (test override:
the cluster's account and partitions through the profile's ECEM_SLURM_* variables, short status
checks). It checks that every job but the workflow's bookkeeping `localrules` went through sbatch
(sacct), that GPU-capable rules landed on the GPU partition with the GPUs their config section asks
for (none when it says CPU) and CPU rules did not, that what the cluster made equals the local run
of the same configuration (`smoke_run`), and that a second invocation finds nothing left to do.
(Each SLURM job costs the plugin's fixed 5 s before sbatch plus status checks that back off by
10 s: resuming after the dataset stage keeps the test to a few queued steps.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pandas as pd
import pytest
import yaml

from ecem.artifacts import read_table
from tests.helpers import REPO, SMOKE, SMOKE_TARGETS, SNAKEMAKE, copy_run, parse_job_stats
from tests.slurm_cluster import ACCOUNT, CPU_PARTITION, GPU_PARTITION, SlurmCluster, SlurmUnavailable

pytestmark = [pytest.mark.integration, pytest.mark.slurm]

PROFILE = REPO / "profiles" / "slurm"
RUN_LIMIT_S = 900
# The rules declared `localrules` (seconds of work, no model): run by Snakemake itself, not queued.
BOOKKEEPING = {"clip_features", "fame_examples", "all"}


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


def through_slurm(cluster, workdir, *args: str) -> subprocess.CompletedProcess:
    """The smoke configuration with `GPU_CONFIG` through the SLURM profile in `workdir`."""
    env = {**cluster.env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           # the test override: this cluster's account and partitions (placeholders in the profile)
           "ECEM_SLURM_ACCOUNT": ACCOUNT, "ECEM_SLURM_PARTITION": CPU_PARTITION,
           "ECEM_SLURM_GPU_PARTITION": GPU_PARTITION}
    gpu = workdir / "gpu.yaml"
    gpu.write_text(yaml.safe_dump(GPU_CONFIG))
    cmd = ["timeout", "-s", "INT", "-k", "30", str(RUN_LIMIT_S),
           SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *SMOKE_TARGETS,
           "--workflow-profile", str(PROFILE), "--configfile", str(SMOKE), str(gpu),
           # the plugin backs off by 10 s after each check that finds a job running: a first check
           # at 20 s finds these small jobs done
           "--slurm-init-seconds-before-status-checks", "20", "--seconds-between-status-checks", "1", *args]
    # A hung plugin ignores SIGTERM but stops on SIGINT: hence `timeout -s INT`.
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)


# What the SLURM run makes again in a copy of the local smoke run: the video features (a GPU-capable
# rule that this config runs on the CPU), the tiny LLM (a CPU rule) and FAME-Net's training and
# generation (GPU rules that ask for one GPU here).
REMADE = ("results/features", "results/runs", "resources/models/tiny-llama")


@pytest.fixture(scope="module")
def slurm_run(cluster, smoke_run, tmp_path_factory):
    """Working directory of the smoke run resumed through SLURM, plus its log and duration."""
    workdir = copy_run(smoke_run, tmp_path_factory.mktemp("slurm_run") / "wd", link_models=False)
    for path in REMADE:
        shutil.rmtree(workdir / path)
    start = time.monotonic()
    proc = through_slurm(cluster, workdir)
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
    # Every planned job is a SLURM job, once (no retries were needed), except the workflow's
    # bookkeeping rules (gathers, summaries, prompts: `localrules`), which Snakemake runs itself.
    local = set(re.findall(r"^localrule (\w+):", slurm_run["log"], flags=re.M))
    assert local <= BOOKKEEPING, local
    planned = {rule: n for rule, n in parse_job_stats(slurm_run["log"]).items() if rule not in local}
    ran: dict[str, int] = {}
    for rec in records:
        ran[rec["rule"]] = ran.get(rec["rule"], 0) + 1
    assert ran == planned and {"tiny_llm", "clip_features_shard", "fame_train", "fame_generate"} <= set(ran)


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


# Deterministic artifacts the cluster made, compared with the local run of the same configuration:
# the video tokens of the seeded tiny CLIP, the V prompts and the seeded FAME-Net run's predictions. Compared with a float tolerance only, because BLAS reductions may
# differ in the last bits. Excluded: logs, benchmarks, run cards' timing fields (wall-clock, host).
TABLES = [
    "results/features/clip.parquet",
    "results/runs/V/examples.parquet",
    "results/runs/V/predictions.parquet",
]


@pytest.mark.parametrize("table", TABLES)
def test_slurm_tables_equal_the_local_run(slurm_run, smoke_run, table):
    remote, local = read_table(slurm_run["workdir"] / table), read_table(smoke_run / table)
    assert len(local) > 0
    pd.testing.assert_frame_equal(remote, local, check_exact=False, rtol=1e-5, atol=1e-6)


def test_slurm_reports_equal_the_local_run(slurm_run, smoke_run):
    remote = json.loads((slurm_run["workdir"] / "results/runs/V/run_card.json").read_text())
    local = json.loads((smoke_run / "results/runs/V/run_card.json").read_text())
    assert _numbers(remote["training"]) == pytest.approx(_numbers(local["training"]), rel=1e-5)


def test_a_second_invocation_through_the_profile_has_nothing_to_do(cluster, slurm_run):
    proc = through_slurm(cluster, slurm_run["workdir"], "-n")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert parse_job_stats(proc.stdout + proc.stderr) == {}, (proc.stdout + proc.stderr)[-3000:]


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
