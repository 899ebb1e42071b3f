"""Helpers of workflow/rules/evaluate.smk (kept here so the .smk holds only rules and constants)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ecem import model_refs


def names_regex(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly these run names (so no other rule's runs)."""
    alternatives = "|".join(re.escape(n) for n in names)
    return alternatives or "(?!x)x"


def baseline_params(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A baseline's settings, its model named where the loader finds it (built or given)."""
    model = cfg.get("model")
    return {**cfg, "model": model_refs.location(model)} if model is not None else dict(cfg)
