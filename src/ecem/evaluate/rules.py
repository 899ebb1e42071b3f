"""Helpers of workflow/rules/evaluate.smk (kept here so the .smk holds only rules and constants)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

OPTIONAL = re.compile(
    r"(^|/)(quality/[^/]+\.json|[^/]*transcripts?[^/]*\.parquet|[^/]*faces?[^/]*\.parquet"
    r"|features/[^/]+\.parquet)$"
)


def names_regex(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly these run names (so no other rule's runs)."""
    alternatives = "|".join(re.escape(n) for n in names)
    return alternatives or "(?!x)x"


def optional_stage_outputs(rules: Iterable[Any]) -> list[str]:
    """Wildcard-free outputs of other stages that the report shows when the workflow builds them:
    data-quality JSONs, transcripts, face summaries, feature tables (for their model metadata).
    Only stages present in the workflow count."""
    from snakemake.io import contains_wildcard

    found = set()
    for rule in rules:
        if rule.name.startswith(("evaluate", "human_eval")):
            continue
        for f in rule.output:
            if not contains_wildcard(f) and OPTIONAL.search(str(f)):
                found.add(str(f))
    return sorted(found)
