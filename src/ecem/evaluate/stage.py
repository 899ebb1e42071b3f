"""Entry points of the evaluate rules (one call per workflow script)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ecem.artifacts import read_metadata, read_table, write_json, write_table
from ecem.evaluate.baselines import run_baseline
from ecem.evaluate.bootstrap import BootstrapSettings, paired_bootstrap
from ecem.evaluate.metrics import METRICS, Scorer, ScoredRun, evaluate_run
from ecem.evaluate.tables import build_tables, load_card, load_metrics, write_tables

log = logging.getLogger(__name__)
STAGE = "evaluate"


def run_baseline_stage(
    name: str, cfg: Mapping[str, Any], splits: Sequence[str], annotations: str, out: str
) -> None:
    ann = read_table(annotations)
    preds = run_baseline(name, cfg, ann, list(splits), device=cfg.get("device", "cpu"))
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


def run_metrics_stage(
    run: str, predictions: str, annotations: str, cfg: Mapping[str, Any], out_scores: str, out_metrics: str
) -> dict[str, Any]:
    preds = read_table(predictions)
    ann = read_table(annotations, columns=["sample_id", "split"])
    sel, n_expected = select_predictions(preds, ann, cfg["splits"])
    boot = BootstrapSettings.from_config(cfg["bootstrap"])
    t0 = time.perf_counter()
    with Scorer(cfg) as scorer:
        scored = scorer.score(
            sel["sample_id"].tolist(), sel["prediction"].tolist(), sel["reference"].tolist()
        )
        results = evaluate_run(scorer, scored, boot, cfg["bootstrap"]["meteor_resamples"])
    try:
        source = read_metadata(predictions)
    except ValueError:
        source = None
    per = scored.per_sample.copy()
    per["meteor_stats"] = scored.meteor_stats or [""] * len(per)
    per["prediction"] = sel["prediction"].fillna("").astype(str).tolist()
    per["reference"] = sel["reference"].astype(str).tolist()
    write_table(per, out_scores, STAGE, {"run": run, "splits": list(cfg["splits"])})
    data = {
        "run": run,
        "kind": (source or {}).get("stage", "unknown"),
        "splits": list(cfg["splits"]),
        "n_expected": n_expected,
        "n_samples": len(sel),
        "n_missing": n_expected - len(sel),
        "n_empty_predictions": int(per["empty"].sum()),
        "n_predictions_outside_splits": int(len(preds) - len(sel)),
        "bootstrap": {**boot.__dict__, "meteor_resamples": cfg["bootstrap"]["meteor_resamples"]},
        "metrics": {k: r.to_json() for k, r in results.items()},
        "predictions": {"path": str(predictions), "metadata": source},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    write_json(data, out_metrics)
    log.info(
        "%s: %d samples scored (%d expected, %d empty predictions)",
        run,
        len(sel),
        n_expected,
        data["n_empty_predictions"],
    )
    return data


def scored_from_table(path: str | Path) -> ScoredRun:
    per = read_table(path)
    return ScoredRun(per["sample_id"].tolist(), per, {}, {}, per["meteor_stats"].tolist())


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
    meteor_boot = boot.capped(cfg["bootstrap"]["meteor_resamples"])
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
                    meteor_boot if metric == "meteor" else boot,
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
    return ScoredRun(list(ids), per, {}, {}, [run.meteor_stats[i] for i in idx])


def run_tables_stage(
    runs: Sequence[str],
    metrics: Sequence[str],
    scores: Sequence[str],
    cards: Mapping[str, str],
    cfg: Mapping[str, Any],
    out_dir: str,
) -> None:
    data = load_metrics(metrics)
    data = {r: data[r] for r in runs}
    paired = paired_table(data, dict(zip(runs, scores, strict=True)), cfg["paired_reference"], cfg)
    tables = build_tables(data, {r: load_card(cards.get(r)) for r in runs}, paired)
    for path in write_tables(tables, out_dir):
        log.info("wrote %s", path)
