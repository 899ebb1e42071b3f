"""Helpers of workflow/rules/evaluate.smk (kept here so the .smk holds only rules and constants)."""

from __future__ import annotations

import re
from collections.abc import Iterable


def names_regex(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly these run names (so no other rule's runs)."""
    alternatives = "|".join(re.escape(n) for n in names)
    return alternatives or "(?!x)x"
