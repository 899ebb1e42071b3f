"""The Scorer: the configured metrics over the pairs of one or more runs, and their CIs.

Every per-pair statistic depends on its own pair only, so the pairs of several runs go through
each metric together (one tokenizer process, one METEOR process, one encoder pass per distinct
sentence); only what depends on a run's whole set is per run (CIDEr's document frequencies,
BERTScore's idf weights when enabled). Models and processes start lazily, once per Scorer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ecem.evaluate.bootstrap import BootstrapSettings, Statistic, bootstrap_ci
from ecem.evaluate.metrics.base import METRICS, Metric, MetricResult, Pairs, ScoredRun
from ecem.evaluate.metrics.bleurt import Bleurt
from ecem.evaluate.metrics.embedding import BertScore, Encoders, SemSim
from ecem.evaluate.metrics.java import ptb_tokenize
from ecem.evaluate.metrics.lexical import Bleu4, Cider, RougeL
from ecem.evaluate.metrics.meteor import Meteor


class Scorer:
    """Scores candidate/reference pairs with the configured metrics (`cfg`: the evaluate section's
    metrics, device, bertscore, sem_sim and bleurt)."""

    def __init__(self, cfg: Mapping[str, Any]):
        self.cfg = cfg
        self.metrics = [m for m in METRICS if m in cfg["metrics"]]
        encoders = Encoders(cfg["device"])
        self._metrics: dict[str, Metric] = {
            "bleu4": Bleu4(), "meteor": Meteor(), "rouge_l": RougeL(), "cider": Cider(),
            "bertscore": BertScore(cfg["bertscore"], encoders), "sem_sim": SemSim(cfg["sem_sim"], encoders),
            "bleurt": Bleurt(cfg["bleurt"], cfg["device"]),
        }

    def close(self) -> None:
        for metric in self._metrics.values():
            metric.close()

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def metric(self, key: str) -> Metric:
        return self._metrics[key]

    def settings(self) -> dict[str, str]:
        return {key: metric.settings() for key, metric in self._metrics.items()}

    def score(self, sample_ids: Sequence[str], candidates: Sequence[str], references: Sequence[str]) -> ScoredRun:
        """Score one run's pairs (see :meth:`score_runs`)."""
        return self.score_runs({"run": (sample_ids, candidates, references)})["run"]

    def score_runs(self, runs: Mapping[str, tuple[Sequence[str], Sequence[str], Sequence[str]]]) -> dict[str, ScoredRun]:
        """Score several runs' `(sample_ids, candidates, references)` at once."""
        spans, ids, cands, refs = {}, [], [], []
        for name, (run_ids, run_cands, run_refs) in runs.items():
            start = len(ids)
            ids += list(run_ids)
            cands += ["" if c is None or (isinstance(c, float) and math.isnan(c)) else str(c) for c in run_cands]
            refs += [str(r) for r in run_refs]
            spans[name] = slice(start, len(ids))
        pairs = Pairs(cands, refs, spans, ptb_tokenize)
        per = pd.DataFrame({"sample_id": ids, "empty": [not c.strip() for c in cands]})
        unavailable: dict[str, str] = {}
        for key in self.metrics:
            metric = self._metrics[key]
            reason = metric.unavailable()
            if reason:
                unavailable[key] = reason
            elif len(pairs):
                for column, values in metric.score(pairs).items():
                    per[column] = values
        settings = self.settings()
        return {name: ScoredRun(ids[span], per.iloc[span].reset_index(drop=True), settings, dict(unavailable))
                for name, span in spans.items()}

    def statistic(self, run: ScoredRun, metric: str) -> Statistic:
        """The corpus statistic of `metric` as a function of an index matrix (rows = resamples)."""
        return self._metrics[metric].statistic(run)


def evaluate_run(scorer: Scorer, run: ScoredRun, boot: BootstrapSettings) -> dict[str, MetricResult]:
    """Point estimate + bootstrap CI for every configured metric of one scored run."""
    n = len(run.sample_ids)
    results: dict[str, MetricResult] = {}
    for key in scorer.metrics:
        settings = run.settings[key]
        if key in run.unavailable:
            results[key] = MetricResult(key, "unavailable", settings, reason=run.unavailable[key])
            continue
        if n == 0:
            results[key] = MetricResult(key, "unavailable", settings, reason="no samples to score")
            continue
        metric = scorer.metric(key)
        lo, hi = bootstrap_ci(n, metric.statistic(run), boot)
        results[key] = MetricResult(key, "ok", f"{settings}; CI: {boot.describe()}", metric.point(run), lo, hi)
    return results
