"""Parse-time helpers of workflow/rules/features_clip.smk (kept out of the .smk file)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TINY_CLIP = "resources/models/tiny-clip"


def builds_tiny(cfg: Mapping[str, Any]) -> bool:
    """Whether `features.clip.model` names the tiny random model that the workflow builds."""
    return str(cfg["model"]).rstrip("/").startswith(TINY_CLIP)


def model_input(cfg: Mapping[str, Any]) -> list[str]:
    """The model directory when it is local (built by the workflow or given); [] for a hub id."""
    model = str(cfg["model"]).rstrip("/")
    return [model] if builds_tiny(cfg) or Path(model).is_dir() else []


def rendered_input(cfg: Mapping[str, Any], render_dirs: Sequence[str]) -> list[str]:
    """The rendered prefix clips, an input only in `rendered_clip` sampling mode."""
    return list(render_dirs) if cfg["sampling"] == "rendered_clip" else []
