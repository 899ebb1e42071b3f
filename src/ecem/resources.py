"""Scheduler resources that follow from the config, derived in one place.

The GPU count of a job is stated once, in its stage's config: `train.num_gpus` and
`generate.num_gpus` for FAME-Net, `device` elsewhere (`cuda`/`cuda:N` = one GPU; `cpu` and
`auto` = none requested). Rules declare `gpu=gpus(section)`; profiles route GPU-capable rules to
a partition but never restate the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def gpus(section: Mapping[str, Any]) -> int:
    """GPUs a job of this config section needs."""
    if "num_gpus" in section:
        return int(section["num_gpus"])
    return 1 if str(section.get("device", "cpu")).startswith("cuda") else 0
