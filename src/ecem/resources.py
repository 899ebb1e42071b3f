"""Scheduler resources that follow from the config, derived in one place.

The GPU count of a job is stated once, in its stage's config: `train.num_gpus` and
`generate.num_gpus` for FAME-Net, `device` elsewhere (`cuda`/`cuda:N` = one GPU; `cpu` and
`auto` = none requested). Rules declare `gpu=gpus(section)` and `threads: threads(section)`;
profiles route GPU-capable rules to a partition but never restate the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def gpus(section: Mapping[str, Any]) -> int:
    """GPUs a job of this config section needs."""
    if "num_gpus" in section:
        return int(section["num_gpus"])
    return 1 if str(section.get("device", "cpu")).startswith("cuda") else 0


#: CPU threads of a job that drives a GPU (decoding, tokenising and host-to-device copies beside it).
GPU_JOB_THREADS = 2


def threads(section: Mapping[str, Any]) -> int:
    """CPU threads of a job of this config section: one on the CPU, a few beside a GPU.

    On the CPU a stage runs as many small jobs (shards, experiments) and Snakemake keeps every
    core busy by running them side by side, which beats threads inside one job: imports, model
    loading and decoding are serial, and a 135M-parameter LLM step gains 1.6× from a second
    thread, two jobs 2×. Measured on the demo (51 jobs, 2 cores): 500 s with two threads per
    job, 365 s with one. A job on a GPU is one per GPU and wants CPU threads to feed it."""
    return GPU_JOB_THREADS if gpus(section) else 1
