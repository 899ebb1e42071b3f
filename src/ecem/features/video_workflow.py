"""Parse-time helpers of workflow/rules/features_clip.smk (kept out of the .smk file)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def rendered_input(cfg: Mapping[str, Any], render_dirs: Sequence[str]) -> list[str]:
    """The rendered prefix clips, an input only in `rendered_clip` sampling mode."""
    return list(render_dirs) if cfg["sampling"] == "rendered_clip" else []
