"""What every metric shares: the metric protocol, the pairs being scored, and the results.

A metric is a small class (`Metric`): it names its settings, scores pairs into per-sample
columns, and gives the corpus statistic that its point estimate and bootstrap CI are computed
from. `ecem.evaluate.metrics.scorer.Scorer` runs the configured ones over the pairs of one or
more runs at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ecem.evaluate.bootstrap import Statistic, mean_statistic
from ecem.provenance import installed_version

#: Metric keys in the paper's column order, with their display names.
METRICS: dict[str, str] = {
    "bleu4": "BLEU4",
    "meteor": "METEOR",
    "rouge_l": "ROUGE-L",
    "bertscore": "BERTScore",
    "sem_sim": "Sem_Sim",
    "bleurt": "BLEURT",
    "cider": "CIDEr",
}


def package_version(dist: str) -> str:
    """An installed distribution's version, or "not installed" (settings strings name them)."""
    return installed_version(dist) or "not installed"


@dataclass
class Pairs:
    """Candidate/reference pairs of one or more runs, concatenated (`spans` says which rows are
    whose). PTB tokens are made once, on first use, for every metric that needs them."""

    candidates: list[str]
    references: list[str]
    spans: dict[str, slice]
    tokenize: Callable[[list[str]], list[str]]
    _tokens: tuple[list[str], list[str]] | None = None

    def __len__(self) -> int:
        return len(self.candidates)

    def tokens(self) -> tuple[list[str], list[str]]:
        """(candidate tokens, reference tokens), each a space-joined string per pair."""
        if self._tokens is None:
            tokens = self.tokenize(self.candidates + self.references)
            self._tokens = tokens[: len(self)], tokens[len(self):]
        return self._tokens


@dataclass
class MetricResult:
    key: str
    status: str  # ok | unavailable | skipped
    settings: str
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "key"} | {"name": METRICS[self.key]}


@dataclass
class ScoredRun:
    """Per-sample scores of one run plus what is needed to recompute each corpus statistic
    (BLEU's n-gram counts and METEOR's statistics lines are columns of `per_sample`)."""

    sample_ids: list[str]
    per_sample: pd.DataFrame  # sample_id, empty, <metric> per-sample scores, their statistics
    settings: dict[str, str]
    unavailable: dict[str, str] = field(default_factory=dict)  # metric → reason


class Metric(Protocol):
    """One metric: its settings string, per-sample scoring, and its corpus statistic."""

    key: str

    def settings(self) -> str:
        """How it is computed (library, version, model, options), stored with every number."""

    def unavailable(self) -> str | None:
        """Why it cannot be computed here (e.g. no model configured), or None."""

    def score(self, pairs: Pairs) -> Mapping[str, np.ndarray | list]:
        """Per-sample columns for `pairs` (its own, named `key`, and any statistics it needs)."""

    def statistic(self, run: ScoredRun) -> Statistic:
        """The corpus statistic as a function of an index matrix (rows = resamples)."""

    def point(self, run: ScoredRun) -> float:
        """The reported value on all samples."""

    def close(self) -> None:
        """Release what it started (processes, models)."""


class MeanMetric:
    """A metric whose corpus value is the mean of its per-sample scores (subclasses with another
    corpus statistic override `statistic`; the point estimate is that statistic on every sample)."""

    key: str

    def unavailable(self) -> str | None:
        return None

    def statistic(self, run: ScoredRun) -> Statistic:
        return mean_statistic(run.per_sample[self.key].to_numpy(dtype=float))

    def point(self, run: ScoredRun) -> float:
        return float(self.statistic(run)(np.arange(len(run.sample_ids))[None, :])[0])

    def close(self) -> None:
        pass
