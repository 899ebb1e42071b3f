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


def missing_inputs(config: Mapping[str, Any]) -> list[str]:
    """Input files that no rule makes and that are absent (one line each, naming the key).

    Snakemake does not look at the inputs of jobs whose outputs are up to date, so a corpus that
    went missing after a run would otherwise pass as "Nothing to be done" on stale results.
    """
    if config["demo"]["enabled"]:
        return []
    problems = []
    meld, ecem = meld_source(config), ecem_source(config)
    if not meld.download:
        layout = MeldLayout.from_config({**config["meld"], "root": meld.path})
        named = {f"meld.splits.{s}.csv": layout.csv_path(s) for s in layout.splits}
        named.update({f"meld.splits.{s}.videos": layout.video_dir(s) for s in layout.splits})
        problems += [f"config key {key!r}: input {str(path)!r} does not exist"
                     for key, path in named.items() if not path.exists()]
    if not ecem.download and not Path(ecem.path).is_file():
        problems.append(f"config key 'ecem.annotations': input {ecem.path!r} does not exist")
    return problems


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
