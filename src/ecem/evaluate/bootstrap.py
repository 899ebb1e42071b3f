"""Seeded percentile bootstrap over samples, for one run and paired between two runs.

A statistic is a function of an index matrix `idx` of shape (resamples, n) that returns one
value per row (vectorised means are cheap; corpus statistics such as BLEU recompute from summed
sufficient statistics). The same seed gives the same resamples, so the CIs of different runs
and metrics are reproducible, and a paired comparison uses one index matrix for both runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BootstrapSettings:
    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95

    @classmethod
    def from_config(cls, cfg: dict) -> BootstrapSettings:
        return cls(int(cfg["resamples"]), int(cfg["seed"]), float(cfg["confidence"]))

    def describe(self) -> str:
        return (
            f"percentile bootstrap over samples, {self.resamples} resamples, seed {self.seed}, "
            f"{self.confidence:.0%} interval"
        )


def resample_indices(n: int, settings: BootstrapSettings) -> np.ndarray:
    """(resamples, n) matrix of sample indices drawn with replacement (seeded)."""
    if n <= 0:
        return np.zeros((settings.resamples, 0), dtype=np.int64)
    rng = np.random.default_rng(settings.seed)
    return rng.integers(0, n, size=(settings.resamples, n))


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(n: int, statistic: Statistic, settings: BootstrapSettings) -> tuple[float, float]:
    """Percentile CI of `statistic` over `settings.resamples` resamples of n samples."""
    if n == 0:
        return float("nan"), float("nan")
    idx = resample_indices(n, settings)
    return percentile_interval(statistic(idx), settings.confidence)


def mean_statistic(values: np.ndarray) -> Statistic:
    values = np.asarray(values, dtype=float)
    return lambda idx: values[idx].mean(axis=1)


@dataclass(frozen=True)
class PairedResult:
    n: int
    difference: float  # statistic(a) - statistic(b) on all paired samples
    ci_low: float
    ci_high: float
    p_value: float  # two-sided: how often the resampled difference crosses zero


def paired_bootstrap(
    n: int, stat_a: Statistic, stat_b: Statistic, settings: BootstrapSettings
) -> PairedResult:
    """Difference a - b of a statistic on the same n paired samples, resampled jointly."""
    if n == 0:
        nan = float("nan")
        return PairedResult(0, nan, nan, nan, nan)
    full = np.arange(n)[None, :]
    diff = float(stat_a(full)[0] - stat_b(full)[0])
    idx = resample_indices(n, settings)
    deltas = np.asarray(stat_a(idx), dtype=float) - np.asarray(stat_b(idx), dtype=float)
    lo, hi = percentile_interval(deltas, settings.confidence)
    p = 2.0 * min(np.mean(deltas <= 0.0), np.mean(deltas >= 0.0))
    if n < 2:  # one sample: every resample is the same pair, so there is no test
        p = float("nan")
    return PairedResult(n, diff, lo, hi, float(min(1.0, p)))
