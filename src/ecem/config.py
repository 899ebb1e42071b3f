"""Config validation: one JSON schema per top-level section, one clear message per error.

Each stage owns `workflow/schemas/config/<section>.schema.yaml`, which validates
`config[<section>]`. The file name is the section name, so adding a stage means adding one file;
top-level keys without a schema file are rejected. Schemas are strict (`additionalProperties:
false` everywhere), so a misspelled key stops the run with a message naming the key's full path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_SUFFIX = ".schema.yaml"


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the key."""


def load_schema(schema_dir: str | Path) -> dict[str, Any]:
    """Assemble the whole-config schema from the per-section files in `schema_dir`."""
    schema_dir = Path(schema_dir)
    sections: dict[str, Any] = {}
    for path in sorted(schema_dir.glob(f"*{SCHEMA_SUFFIX}")):
        name = path.name[: -len(SCHEMA_SUFFIX)]
        with path.open() as fh:
            section = yaml.safe_load(fh)
        # Its own $id makes the section a separate schema resource, so its local references
        # (`$ref: "#/$defs/..."`) resolve inside the section file, not in the assembled whole.
        section.setdefault("$id", f"urn:ecem:config:{name}")
        sections[name] = section
    if not sections:
        raise FileNotFoundError(f"no config schemas ({SCHEMA_SUFFIX}) in {schema_dir}")
    return {
        "type": "object",
        "properties": sections,
        "required": sorted(sections),
        "additionalProperties": False,
    }


def _key_path(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        prefix = f"{where}." if error.absolute_path else ""
        keys = ", ".join(f"'{prefix}{e}'" for e in extra)
        return f"unknown config key {keys} (allowed under {where}: {', '.join(allowed)})"
    if error.validator == "required":
        return f"config key {where!r} is missing a required entry: {error.message}"
    return f"config key {where!r}: {error.message}"


def validate_config(config: Mapping[str, Any], schema_dir: str | Path) -> None:
    """Raise ConfigError naming the first offending key (the deepest, most specific error)."""
    schema = load_schema(schema_dir)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(config)))
    if error is not None:
        raise ConfigError(_describe(error))
