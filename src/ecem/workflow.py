"""Helpers the Snakemake rules use (kept here so the .smk files hold only rules and constants)."""

from __future__ import annotations

import importlib.util


def module_files(*modules: str) -> list[str]:
    """Source files of package modules, listed as rule inputs so that editing a stage's code
    reruns that stage (Snakemake does not follow imports by itself)."""
    paths = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"package module {name!r} not found: is `ecem` installed?")
        paths.append(spec.origin)
    return paths
