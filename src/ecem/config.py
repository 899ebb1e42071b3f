"""Config validation: one JSON schema per top-level section, one clear message per error.

Each stage owns `workflow/schemas/config/<section>.schema.yaml`, which validates
`config[<section>]`. The file name is the section name, so adding a stage means adding one file;
top-level keys without a schema file are rejected. Schemas are strict (`additionalProperties:
false` everywhere), so a misspelled key stops the run with a message naming the key's full path.
A key the config leaves out whose schema gives a `default` is filled in by validation (as
`snakemake.utils.validate(..., set_default=True)` does), so that default lives only in its schema.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ecem.modalities import Modalities

SCHEMA_SUFFIX = ".schema.yaml"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the key."""


def load_schema(schema_dir: str | Path) -> dict[str, Any]:
    """Assemble the whole-config schema from the per-section files in `schema_dir`."""
    schema_dir = Path(schema_dir)
    sections: dict[str, Any] = {}
    for path in sorted(schema_dir.glob(f"*{SCHEMA_SUFFIX}")):
        name = path.name[: -len(SCHEMA_SUFFIX)]
        with path.open() as fh:  # libyaml's parser when PyYAML has it: 10x faster at every start-up
            section = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        # Its own $id makes the section a separate schema resource, so its local references
        # (`$ref: "#/$defs/..."`) resolve inside the section file, not in the assembled whole.
        section.setdefault("$id", f"urn:ecem:config:{name}")
        # The whole is validated as draft 2020-12; a `$schema` left inside would make jsonschema
        # validate the section with its stock class, which does not fill in defaults.
        if section.pop("$schema", DIALECT) != DIALECT:
            raise ValueError(f"{path}: config schemas are JSON Schema {DIALECT}")
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


def _properties_filling_defaults(validator: Any, properties: Mapping[str, Any], instance: Any,
                                 schema: Mapping[str, Any]) -> Iterator[jsonschema.ValidationError]:
    """The `properties` keyword, after setting each absent property whose schema has a `default`.

    It runs wherever validation applies a `properties` keyword: nested objects, the entries of
    `additionalProperties` / `patternProperties` maps (experiments.<name>), and the `then` branch
    of an `if` that holds (a baseline kind's keys). It also runs while an `if`, `oneOf` or `anyOf`
    branch is tried, so a `default` belongs only in a subschema that always applies to its object.
    """
    if validator.is_type(instance, "object"):
        for name, subschema in properties.items():
            if name not in instance and isinstance(subschema, Mapping) and "default" in subschema:
                instance[name] = copy.deepcopy(subschema["default"])
    check = jsonschema.Draft202012Validator.VALIDATORS["properties"]
    yield from check(validator, properties, instance, schema)


#: Draft 2020-12 validation that fills in schema defaults (the filled values are validated too).
DefaultFillingValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"properties": _properties_filling_defaults})


def validate_config(config: MutableMapping[str, Any], schema_dir: str | Path) -> None:
    """Fill in the schema defaults of keys `config` leaves out (in place: rules see them), then
    raise ConfigError naming the first offending key (the deepest, most specific error)."""
    validator = DefaultFillingValidator(load_schema(schema_dir))
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error))


# Keys whose bundled:<name> is a CTranslate2 Whisper read in place (model_refs.resolve_whisper).
WHISPER_MODEL_KEYS = ("transcribe.model", "features.audio.model")
RANDOM_MODEL_SPECS = {"fame.llm": ("fame", "tiny_llm"), "features.clip.model": ("features", "clip", "tiny")}


def bundled_role(key: str) -> str | None:
    """Which bundled model role (`ecem.bundled.BundledModel.role`) config key `key` takes."""
    if key == "fame.llm" or (key.startswith("baselines.") and key.endswith(".model")):
        return "causal_lm"
    return "vision" if key == "features.clip.model" else None


def _bundled_problem(key: str, ref: str) -> str | None:
    from ecem import bundled, model_refs

    try:
        name = model_refs.built_name(ref)
    except ValueError as exc:
        return f"config key {key!r}: {exc}"
    role = bundled_role(key)
    if name not in bundled.MODELS or role is None:
        fitting = sorted(n for n, m in bundled.MODELS.items() if m.role == role)
        return (f"config key {key!r}: {ref!r} is not a bundled model it can use (bundled here: "
                f"{', '.join('bundled:' + n for n in fitting) or 'none'})")
    if bundled.MODELS[name].role != role:
        return f"config key {key!r}: {ref!r} is a {bundled.MODELS[name].role} model, not a {role} model"
    return None


def _dig(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        config = config.get(key) if isinstance(config, Mapping) else None
    return config


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """What a schema cannot say: ratios that must sum to 1, inputs the demo would overwrite,
    local model paths that do not exist, generated models without their settings, and
    experiments with nothing to train. One line per problem, each naming its key."""
    from ecem import model_refs, sources

    problems = []
    ratios = config["dataset"]["split"]["ratios"]
    if abs(sum(ratios.values()) - 1.0) > 1e-6:
        problems.append(f"config key 'dataset.split.ratios': {dict(ratios)} sum to "
                        f"{sum(ratios.values()):g}, not 1")
    problems += sources.demo_conflicts(config)
    for key, ref in sources.model_keys(config).items():
        if ref is not None and model_refs.is_random(ref):
            spec = RANDOM_MODEL_SPECS.get(key)
            if spec is None:
                problems.append(f"config key {key!r}: {ref!r} — only "
                                f"{', '.join(RANDOM_MODEL_SPECS)} can be a generated random model")
            elif _dig(config, spec) is None:
                problems.append(f"config key {key!r} is {ref!r} but '{'.'.join(spec)}' is null: "
                                f"a random model needs its settings there")
            else:
                try:
                    model_refs.built_model_dir(ref)
                except ValueError as exc:
                    problems.append(f"config key {key!r}: {exc}")
        elif ref is not None and model_refs.is_bundled(ref) and key in WHISPER_MODEL_KEYS:
            if ref[len(model_refs.BUNDLED_PREFIX):] not in model_refs.BUNDLED_WHISPER:
                problems.append(f"config key {key!r}: {ref!r} is not a bundled Whisper model (bundled: "
                                f"{', '.join(model_refs.BUNDLED_PREFIX + m for m in model_refs.BUNDLED_WHISPER)})")
        elif ref is not None and model_refs.is_bundled(ref):
            if (error := _bundled_problem(key, ref)) is not None:
                problems.append(error)
        elif (error := model_refs.missing_path_error(key, ref)) is not None:
            problems.append(error)
    problems += _runs_problems(config)
    trainable = [str(p) for p in config["fame"]["trainable"]]
    only_projectors = all(p.startswith(("projector", "audio_projector")) for p in trainable)
    audio_trains = any(p.startswith("audio_projector") for p in trainable)
    for name, exp in config["experiments"].items():
        mods = Modalities.from_experiment(exp)
        if not (mods.video or mods.text or mods.face or mods.audio):
            problems.append(f"config key 'experiments.{name}': no input modality (video, text, "
                            f"face and audio are all false)")
        elif not mods.video and not (mods.audio and audio_trains) and only_projectors:
            problems.append(f"config key 'experiments.{name}': video is false, so the trainable "
                            f"part (fame.trainable = {trainable}, the projectors) would get no "
                            f"gradient; use video: true, audio: true with 'audio_projector.*' "
                            f"trainable, or add trainable LLM parameters")
    return problems


def selected_runs(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(experiments, baselines) that this invocation runs: those named by `runs`, in the order
    they are defined, or all of them when `runs` is null."""
    chosen = config.get("runs")
    experiments, baselines = dict(config["experiments"]), dict(config["baselines"] or {})
    if chosen is None:
        return experiments, baselines
    return ({k: v for k, v in experiments.items() if k in chosen},
            {k: v for k, v in baselines.items() if k in chosen})


def config_slice(section: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The entries `keys` of a config section, in that order: what a rule passes as `params:`
    when it uses only part of its stage's section, so that editing another key of the section
    does not rerun it. A key the section lacks raises KeyError (validation filled the defaults)."""
    return {key: section[key] for key in keys}


def _runs_problems(config: Mapping[str, Any]) -> list[str]:
    experiments, baselines = config["experiments"], config["baselines"] or {}
    problems = []
    both = sorted(set(experiments) & set(baselines))
    if both:
        problems.append(f"config keys 'experiments' and 'baselines' both define {both}: run names must be unique")
    unknown = [r for r in config.get("runs") or [] if r not in experiments and r not in baselines]
    if unknown:
        problems.append(f"config key 'runs' names {unknown}, which no 'experiments' or 'baselines' entry "
                        f"defines (defined: {', '.join([*experiments, *baselines])})")
    picked = [*selected_runs(config)[0], *selected_runs(config)[1]]
    outside = [r for r in config["evaluate"]["human_eval"]["runs"] if r not in picked]
    if outside and not unknown:
        problems.append(f"config key 'evaluate.human_eval.runs' names {outside}, which are not among the "
                        f"runs this invocation makes (runs: {picked})")
    return problems


def check_config(config: MutableMapping[str, Any], schema_dir: str | Path) -> None:
    """Schema validation (filling in defaults), then `config_problems`; raise ConfigError with the
    first problem."""
    validate_config(config, schema_dir)
    problems = config_problems(config)
    if problems:
        raise ConfigError(problems[0])
