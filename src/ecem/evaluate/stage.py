"""Entry points of the evaluate rules (one call per workflow script)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ecem.artifacts import read_metadata, read_table, write_json, write_table
from ecem.evaluate.baselines import run_baseline
from ecem.evaluate.bootstrap import BootstrapSettings, paired_bootstrap
from ecem.evaluate.metrics import METRICS, Scorer, ScoredRun, evaluate_run
from ecem.evaluate.reliance import reliance_frame
from ecem.evaluate.tables import build_tables, load_card, load_metrics, write_tables
from ecem.provenance import fingerprint

log = logging.getLogger(__name__)
STAGE = "evaluate"


def run_baseline_stage(
    name: str, cfg: Mapping[str, Any], splits: Sequence[str], annotations: str, out: str
) -> None:
    ann = read_table(annotations)
    preds = run_baseline(name, cfg, ann, list(splits))
    write_table(preds, out, "baseline", {"baseline": name, "config": dict(cfg), "splits": list(splits)})
    log.info("baseline %s: %d predictions → %s", name, len(preds), out)


def select_predictions(
    predictions: pd.DataFrame, annotations: pd.DataFrame, splits: Sequence[str]
) -> tuple[pd.DataFrame, int]:
    """Predictions of the evaluated splits' samples (one per sample) and the number expected."""
    expected = set(annotations.loc[annotations["split"].isin(list(splits)), "sample_id"])
    sel = predictions[predictions["sample_id"].isin(expected)]
    sel = sel.drop_duplicates("sample_id").sort_values("sample_id").reset_index(drop=True)
    return sel, len(expected)


@dataclass
class _RunToScore:
    """One run's selected predictions and where its results go."""

    name: str
    predictions_path: str
    selected: pd.DataFrame
    n_expected: int
    n_predictions: int
    source: dict[str, Any] | None
    key: str  # fingerprint of what its scores depend on
    out_scores: str
    out_metrics: str


def run_scoring_stage(
    runs: Sequence[str],
    predictions: Sequence[str],
    annotations: str,
    cfg: Mapping[str, Any],
    out_scores: Sequence[str],
    out_metrics: Sequence[str],
    cache_dir: str,
    code: str = "",
    peers: Mapping[str, str] | None = None,
    threads: int = 1,
) -> None:
    """Rule evaluate_metrics: per-sample scores and metrics.json of `runs` (the rule passes one).

    Scoring starts Java (PTB tokenizer, METEOR: ~8 CPU-s) and the encoders, and pairs are scored
    best many runs at once (`Scorer.score_runs`), so one job of a full evaluation scores, besides
    its own runs, every run in `peers` (run → predictions path) whose predictions already exist and
    are not yet in `cache_dir`, and caches them all; the other runs' jobs (the rule runs them last,
    at a low priority) then find their scores there and only copy them. A cache entry is keyed by
    what the scores depend on (the selected predictions and references, the settings, the scoring
    `code`), so a peer read before its predictions changed is simply not found again, and a run
    whose predictions did not change is never scored twice. Jobs take turns on the cache (a lock)."""
    ann = read_table(annotations, columns=["sample_id", "split"])
    boot = BootstrapSettings.from_config(cfg["bootstrap"])
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        own = [_prepare(name, path, ann, cfg, code, scores_out, metrics_out) for name, path, scores_out, metrics_out
               in zip(runs, predictions, out_scores, out_metrics, strict=True)]
        extra = [_prepare(name, path, ann, cfg, code) for name, path in (peers or {}).items()
                 if name not in runs and Path(path).is_file()]
        todo = [run for run in own + extra if _from_cache(cache, run.name, run.key) is None]
        if todo:
            t0 = time.perf_counter()
            _score(todo, cfg, boot, cache, threads)
            log.info("scored %s together in %.1f s", ", ".join(r.name for r in todo), time.perf_counter() - t0)
        for run in own:
            if run.name not in {r.name for r in todo}:
                log.info("%s: unchanged since it was scored (%s), taken from the cache", run.name, run.key[:12])
            _write_run(run, *_from_cache(cache, run.name, run.key))


def peer_predictions(predictions: str) -> dict[str, str]:
    """Every run's predictions beside this one's (`runs/*/predictions.parquet`), by run name."""
    return {path.parent.name: str(path) for path in sorted(Path(predictions).parent.parent.glob("*/predictions.parquet"))}


def _prepare(name: str, path: str, ann: pd.DataFrame, cfg: Mapping[str, Any], code: str, out_scores: str = "",
             out_metrics: str = "") -> _RunToScore:
    """A run's selected predictions and the fingerprint of what its scores depend on."""
    preds = read_table(path)
    sel, n_expected = select_predictions(preds, ann, cfg["splits"])
    pairs = sel[["sample_id", "prediction", "reference"]].fillna("").astype(str).values.tolist()
    key = fingerprint({"pairs": pairs, "n_expected": n_expected, "n_predictions": len(preds), "cfg": cfg,
                       "code": code})
    return _RunToScore(name, path, sel, n_expected, len(preds), _metadata(path), key, out_scores, out_metrics)


def _score(todo: Sequence[_RunToScore], cfg: Mapping[str, Any], boot: BootstrapSettings, cache: Path,
           threads: int) -> None:
    """Score `todo` together (one Scorer) and put each run's scores and metrics in the cache."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    with Scorer(dict(cfg)) as scorer:
        scored = scorer.score_runs({r.name: (r.selected["sample_id"].tolist(), r.selected["prediction"].tolist(),
                                             r.selected["reference"].tolist()) for r in todo})
        for run in todo:
            results = evaluate_run(scorer, scored[run.name], boot)
            per = scored[run.name].per_sample.copy()
            if "meteor_stats" not in per:  # the column is part of scores.parquet's contract
                per["meteor_stats"] = ""
            per["prediction"] = run.selected["prediction"].fillna("").astype(str).tolist()
            per["reference"] = run.selected["reference"].astype(str).tolist()
            data = {
                "run": run.name,
                "kind": (run.source or {}).get("stage", "unknown"),
                "splits": list(cfg["splits"]),
                "n_expected": run.n_expected,
                "n_samples": len(run.selected),
                "n_missing": run.n_expected - len(run.selected),
                "n_empty_predictions": int(per["empty"].sum()),
                "n_predictions_outside_splits": run.n_predictions - len(run.selected),
                "bootstrap": dict(boot.__dict__),
                "metrics": {k: r.to_json() for k, r in results.items()},
                "scored_with": sorted(r.name for r in todo),
                "fingerprint": run.key,
            }
            _to_cache(cache, run.name, per, data)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (blocks until the job holding it is done)."""
    import fcntl

    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _metadata(path: str) -> dict[str, Any] | None:
    try:
        return read_metadata(path)
    except ValueError:
        return None


def _write_run(run: _RunToScore, per: pd.DataFrame, data: dict[str, Any]) -> None:
    write_table(per, run.out_scores, STAGE, {"run": run.name, "splits": data["splits"]})
    write_json({**data, "predictions": {"path": str(run.predictions_path), "metadata": run.source}},
               run.out_metrics)
    log.info("%s: %d samples scored (%d expected, %d empty predictions)", run.name, data["n_samples"],
             data["n_expected"], data["n_empty_predictions"])


def _cache_paths(cache: Path, run: str) -> tuple[Path, Path]:
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", run)
    return cache / f"{safe}.scores.parquet", cache / f"{safe}.metrics.json"


def _from_cache(cache: Path, run: str, key: str) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """A run's cached scores when they were computed from exactly `key`'s inputs."""
    scores, metrics = _cache_paths(cache, run)
    if not (scores.is_file() and metrics.is_file()):
        return None
    data = json.loads(metrics.read_text())
    return (read_table(scores), data) if data.get("fingerprint") == key else None


def _to_cache(cache: Path, run: str, per: pd.DataFrame, data: dict[str, Any]) -> None:
    scores, metrics = _cache_paths(cache, run)
    write_table(per, scores, STAGE, {"run": run})
    write_json(data, metrics)


def scored_from_table(path: str | Path) -> ScoredRun:
    per = read_table(path)
    return ScoredRun(per["sample_id"].tolist(), per, {}, {})


def paired_table(
    runs: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, str],
    reference: str | None,
    cfg: Mapping[str, Any],
) -> pd.DataFrame:
    """Each run − the reference run, per metric, on their common samples (paired bootstrap)."""
    cols = ["run", "reference", "metric", "n", "difference", "ci_low", "ci_high", "p_value"]
    if not reference or reference not in scores:
        return pd.DataFrame(columns=cols)
    boot = BootstrapSettings.from_config(cfg["bootstrap"])
    ref = scored_from_table(scores[reference])
    rows = []
    with Scorer(cfg) as scorer:
        for name, path in scores.items():
            if name == reference:
                continue
            other = scored_from_table(path)
            common = sorted(set(ref.sample_ids) & set(other.sample_ids))
            a, b = _subset(other, common), _subset(ref, common)
            for metric in scorer.metrics:
                if any(runs[r]["metrics"].get(metric, {}).get("status") != "ok" for r in (name, reference)):
                    continue
                res = paired_bootstrap(
                    len(common),
                    scorer.statistic(a, metric),
                    scorer.statistic(b, metric),
                    boot,
                )
                rows.append(
                    [
                        name,
                        reference,
                        METRICS[metric],
                        res.n,
                        res.difference,
                        res.ci_low,
                        res.ci_high,
                        res.p_value,
                    ]
                )
    return pd.DataFrame(rows, columns=cols)


def _subset(run: ScoredRun, ids: Sequence[str]) -> ScoredRun:
    pos = {s: i for i, s in enumerate(run.sample_ids)}
    idx = [pos[s] for s in ids]
    per = run.per_sample.iloc[idx].reset_index(drop=True)
    return ScoredRun(list(ids), per, {}, {})


def run_tables_stage(
    runs: Sequence[str],
    metrics: Sequence[str],
    scores: Sequence[str],
    cards: Mapping[str, str],
    reliance: Mapping[str, str],
    cfg: Mapping[str, Any],
    out_dir: str,
) -> None:
    """Rule evaluate_tables: Tables 2/3/4, the paired table and the modality-reliance table of
    the FAME-Net runs (`reliance`: run → its reliance.parquet)."""
    data = load_metrics(metrics)
    data = {r: data[r] for r in runs}
    paired = paired_table(data, dict(zip(runs, scores, strict=True)), cfg["paired_reference"], cfg)
    tables = build_tables(data, {r: load_card(cards.get(r)) for r in runs}, paired,
                          reliance_table(reliance, BootstrapSettings.from_config(cfg["bootstrap"])))
    for path in write_tables(tables, out_dir):
        log.info("wrote %s", path)


def reliance_table(paths: Mapping[str, str], boot: BootstrapSettings) -> pd.DataFrame:
    """The modality-reliance rows of every FAME-Net run, from each run's reliance.parquet (the
    inputs it uses are in the file's metadata)."""
    tables = {run: read_table(path) for run, path in paths.items()}
    used = {run: read_metadata(path)["settings"]["inputs"] for run, path in paths.items()}
    return reliance_frame(tables, used, boot)
