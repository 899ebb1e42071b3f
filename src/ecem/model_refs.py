"""How a config names a model, and where that model lives.

A model value is one of three things:

- `random:<name>` — a tiny random-weight model of the real architecture that the workflow builds
  itself (from the role's `tiny` settings) into the project-owned `resources/models/<name>`. This
  is the only way a rule ever writes a model: a user's own model is never a rule output.
- a local path (`/…`, `./…`, `~/…`, or anything with two or more `/`): read only. A path-like
  value that does not exist is a config error at start-up, so it is never mistaken for a hub id.
- a hub id (`org/name` or `name`), fetched by its loader from the Hugging Face cache.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RANDOM_PREFIX = "random:"
MODELS_DIR = "resources/models"
CARD_FILE = "ecem_model.json"  # beside every model the workflow builds: what it is, and how made


def is_random(ref: str) -> bool:
    """Whether `ref` names a random model the workflow builds (`random:<name>`)."""
    return str(ref).startswith(RANDOM_PREFIX)


def random_model_dir(ref: str) -> str:
    """`random:tiny-llama` → `resources/models/tiny-llama` (the rule output that builds it)."""
    name = str(ref)[len(RANDOM_PREFIX):].strip("/")
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{ref!r}: expected random:<name> with a plain directory name")
    return f"{MODELS_DIR}/{name}"


def location(ref: str) -> str:
    """What a loader's `from_pretrained` takes: the built directory, the local path or the hub id."""
    ref = str(ref)
    return random_model_dir(ref) if is_random(ref) else os.path.expanduser(ref.rstrip("/") or ref)


def looks_like_path(ref: str) -> bool:
    """A value no hub id can be: absolute, explicitly relative, home-relative or nested twice."""
    ref = str(ref)
    return (ref.startswith(("/", "./", "../", "~")) or ref in (".", "..") or ref.count("/") >= 2
            or "\\" in ref)


def local_input(ref: str | None) -> list[str]:
    """The model as a rule input: its directory when local (built or given), [] for a hub id."""
    if ref is None:
        return []
    ref = str(ref)
    if is_random(ref) or looks_like_path(ref) or Path(location(ref)).exists():
        return [location(ref)]
    return []


def missing_path_error(key: str, ref: str | None) -> str | None:
    """A one-line error when `ref` looks like a local path that does not exist; else None."""
    if ref is None or is_random(ref) or not looks_like_path(ref):
        return None
    if Path(location(ref)).exists():
        return None
    return (f"config key {key!r}: local model path {ref!r} does not exist (a hub id looks like "
            f"'org/name'; a model the workflow builds is 'random:<name>')")


def write_model_card(model_dir: str | Path, random_weights: bool, **facts: Any) -> None:
    """Describe a model the workflow built (`random_weights` first: the report's banner and the
    run cards read it)."""
    card: Mapping[str, Any] = {"random_weights": bool(random_weights), **facts}
    (Path(model_dir) / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")


def is_random_model(model: str | Path) -> bool:
    """Whether `model` is a local directory whose card says its weights are random."""
    card = Path(model) / CARD_FILE
    return card.is_file() and bool(json.loads(card.read_text()).get("random_weights", False))
