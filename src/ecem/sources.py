"""Where a run's inputs come from, and the folders the workflow may write.

The data-safety rule: **rules write only under `results/` and the project's own `resources/`
subfolders (`demo/`, `models/`, `downloads/`); a path the user names as an input is never a rule
output.** So:

- the demo corpus is generated into `resources/demo/` only; with the demo on, an input key that
  points elsewhere is a config error (the demo would otherwise overwrite it);
- a download lands in the project-owned cache `resources/downloads/`, and the run then reads it
  from there; the download rule exists only while that cache is incomplete and the user's own
  path is absent, so no file time, code edit or rerun trigger can ever rerun it over data;
- generated models are `random:<name>` references built in `resources/models/`
  (`ecem.model_refs`), never written to a path the user named.

`check_rule_outputs` enforces the rule over the parsed workflow at every start-up.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ecem import model_refs
from ecem.meld import MeldLayout

RESULTS_DIR = "results"
DEMO_DIR = "resources/demo"
DOWNLOADS_DIR = "resources/downloads"
OWNED_DIRS = (RESULTS_DIR, DEMO_DIR, model_refs.MODELS_DIR, DOWNLOADS_DIR)
MELD_CACHE = f"{DOWNLOADS_DIR}/MELD.Raw"
ECEM_CACHE_DIR = f"{DOWNLOADS_DIR}/ECEM"


def _norm(path: str | Path) -> str:
    """An absolute, normalised path (relative paths are taken from the working directory)."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(str(path))))


def is_within(path: str | Path, folder: str | Path) -> bool:
    """Whether `path` is `folder` or lies below it (`..` and symlink-free text comparison)."""
    p, f = _norm(path), _norm(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


def owned(path: str | Path) -> bool:
    """Whether the workflow may write `path` (it lies in one of OWNED_DIRS)."""
    return any(is_within(path, d) for d in OWNED_DIRS)


def _meld_paths(meld_cfg: Mapping[str, Any]) -> dict[str, str]:
    """Every path the `meld` section names, keyed by its config key."""
    layout = MeldLayout.from_config(meld_cfg)
    paths = {"meld.root": str(layout.root)}
    for split in layout.splits:
        paths[f"meld.splits.{split}.csv"] = str(layout.csv_path(split))
        paths[f"meld.splits.{split}.videos"] = str(layout.video_dir(split))
    return paths


def demo_conflicts(config: Mapping[str, Any]) -> list[str]:
    """With the demo on, each input key that points outside `resources/demo/` (one line each)."""
    if not config["demo"]["enabled"]:
        return []
    named = {**_meld_paths(config["meld"]), "ecem.annotations": config["ecem"]["annotations"],
             "demo.truth": config["demo"]["truth"]}
    return [f"config key {key!r} is {path!r}, outside {DEMO_DIR}/: with demo.enabled the demo "
            f"corpus is generated there and would overwrite it; set demo.enabled: false to use "
            f"your own data" for key, path in named.items() if not is_within(path, DEMO_DIR)]


@dataclasses.dataclass(frozen=True)
class Source:
    """Where one input is read from, and whether a download rule must first fill the cache."""

    path: str
    download: bool = False


def _meld_complete(root: str | Path, meld_cfg: Mapping[str, Any]) -> bool:
    layout = MeldLayout.from_config({**meld_cfg, "root": str(root)})
    return all(layout.csv_path(s).is_file() and layout.video_dir(s).is_dir() for s in layout.splits)


def meld_source(config: Mapping[str, Any]) -> Source:
    """The MELD root this run reads: the user's (or the demo's), else the download cache."""
    root, url = config["meld"]["root"], config["meld"]["download"]["url"]
    if config["demo"]["enabled"] or Path(root).exists() or not url:
        return Source(root)
    return Source(MELD_CACHE, download=not _meld_complete(MELD_CACHE, config["meld"]))


def ecem_source(config: Mapping[str, Any]) -> Source:
    """The ECEM JSON this run reads: the user's (or the demo's), else the download cache."""
    path, url = config["ecem"]["annotations"], config["ecem"]["download"]["url"]
    if config["demo"]["enabled"] or Path(path).exists() or not url:
        return Source(path)
    cached = f"{ECEM_CACHE_DIR}/{Path(path).name}"
    return Source(cached, download=not Path(cached).is_file())


class MissingInput(FileNotFoundError):
    """An input the requested targets need does not exist (the message names the config key)."""


def input_paths(config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The input files of each kind, by config key: `csvs` (the MELD CSVs) and `annotations` (the
    ECEM JSON) — all the annotation join, the split, the text baselines and their metrics read —
    and `videos` (the MELD clip folders: what everything that looks at the clips reads)."""
    layout = MeldLayout.from_config({**config["meld"], "root": meld_source(config).path})
    return {"csvs": {f"meld.splits.{s}.csv": str(layout.csv_path(s)) for s in layout.splits},
            "annotations": {"ecem.annotations": ecem_source(config).path},
            "videos": {f"meld.splits.{s}.videos": str(layout.video_dir(s)) for s in layout.splits}}


def checked_inputs(config: Mapping[str, Any], kind: str, targets: Iterable[str] = ()) -> list[str]:
    """The `kind` inputs (see `input_paths`) of a rule whose job the requested `targets` need.

    Used as a Snakemake input function, so only the rules a target needs check their inputs;
    e.g. the annotation join runs with the CSVs and the JSON alone, without the clip folders. A
    missing input stops the run, naming its config key and the targets that needed it, also when
    outputs from an earlier run exist (Snakemake would otherwise call them up to date). Inputs a
    download rule makes (the demo's or the download cache's) are not checked: a rule makes them.
    """
    paths = input_paths(config)[kind]
    for key, path in paths.items():
        if not _made_by_a_rule(config, key) and not Path(path).exists():
            wanted = ", ".join(sorted(targets)) or "the default target (rule all)"
            raise MissingInput(f"Missing input: config key {key!r}: {path!r} does not exist (needed for {wanted})")
    return list(paths.values())


def inputs_of(config: Mapping[str, Any], kind: str, workflow: Any) -> Any:
    """A Snakemake input function: `checked_inputs` of `kind` for the targets of this invocation."""
    return lambda wildcards: checked_inputs(config, kind, workflow.dag_settings.targets)


def _made_by_a_rule(config: Mapping[str, Any], key: str) -> bool:
    """Whether the input named by `key` is an output of this workflow (the demo corpus, or the
    download cache while a download is pending)."""
    if config["demo"]["enabled"]:
        return True
    source = ecem_source(config) if key == "ecem.annotations" else meld_source(config)
    return source.download


def user_inputs(config: Mapping[str, Any]) -> dict[str, str]:
    """Paths the user named as inputs (never rule outputs), keyed by config key."""
    named: dict[str, str] = {}
    if not config["demo"]["enabled"]:
        named.update(_meld_paths(config["meld"]))
        named["ecem.annotations"] = config["ecem"]["annotations"]
    for key, ref in model_keys(config).items():
        if ref is not None and not model_refs.is_built(ref) and model_refs.looks_like_path(ref):
            named[key] = model_refs.location(ref)
    return named


def model_keys(config: Mapping[str, Any]) -> dict[str, str | None]:
    """Every config key that names a model or a weights file, with its value."""
    feats, ev = config["features"], config["evaluate"]
    keys: dict[str, str | None] = {
        "fame.llm": config["fame"]["llm"],
        "fame.projector.init": config["fame"]["projector"]["init"],
        "features.clip.model": feats["clip"]["model"],
        "features.audio.model": feats["audio"]["model"],
        "features.faces.detector.retinaface.weights": feats["faces"]["detector"]["retinaface"]["weights"],
        "features.faces.expression.fer2013.weights": feats["faces"]["expression"]["fer2013"]["weights"],
        "features.faces.expression.ddamfn.weights": feats["faces"]["expression"]["ddamfn"]["weights"],
        "transcribe.model": config["transcribe"]["model"],
        "transcribe.align_model": config["transcribe"]["align_model"],
        "evaluate.bertscore.model": ev["bertscore"]["model"],
        "evaluate.sem_sim.model": ev["sem_sim"]["model"],
        "evaluate.bleurt.model": ev["bleurt"]["model"],
    }
    for name, baseline in (config.get("baselines") or {}).items():
        if "model" in baseline:
            keys[f"baselines.{name}.model"] = baseline["model"]
    return keys


def check_rule_outputs(outputs: Iterable[tuple[str, str]], config: Mapping[str, Any]) -> list[str]:
    """Violations of the data-safety rule among `(rule, output path)` pairs (one line each)."""
    problems = []
    named = user_inputs(config)
    for rule, path in outputs:
        if not owned(path):
            problems.append(f"rule {rule} writes {path!r}, outside the folders the workflow owns "
                            f"({', '.join(d + '/' for d in OWNED_DIRS)})")
        for key, user_path in named.items():
            if is_within(user_path, path) or is_within(path, user_path):
                problems.append(f"rule {rule} would write {path!r}, which is config key {key!r} "
                                f"({user_path!r}), a user input")
    return problems
