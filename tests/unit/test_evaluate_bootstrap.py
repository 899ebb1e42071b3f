"""Bootstrap: seeded, contains the estimate, narrows with n; paired differences."""

from __future__ import annotations

import numpy as np
import pytest

from ecem.evaluate.bootstrap import BootstrapSettings, bootstrap_ci, mean_statistic, paired_bootstrap
from ecem.evaluate.metrics import corpus_bleu


def test_ci_contains_point_estimate_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    boot = BootstrapSettings(1000, 3, 0.95)
    widths = []
    for n in (20, 200, 2000):
        x = rng.uniform(0, 1, n)
        lo, hi = bootstrap_ci(n, mean_statistic(x), boot)
        assert lo <= x.mean() <= hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    assert widths[1] / widths[2] == pytest.approx(np.sqrt(10), rel=0.25)


def test_seeded_and_reproducible():
    x = np.arange(50, dtype=float)
    a = bootstrap_ci(50, mean_statistic(x), BootstrapSettings(200, 5, 0.9))
    b = bootstrap_ci(50, mean_statistic(x), BootstrapSettings(200, 5, 0.9))
    c = bootstrap_ci(50, mean_statistic(x), BootstrapSettings(200, 6, 0.9))
    assert a == b and a != c


def test_corpus_statistic_ci_contains_estimate():
    rng = np.random.default_rng(1)
    n = 100
    testlen = rng.integers(5, 15, n)
    guess = np.stack([np.maximum(0, testlen - k) for k in range(4)], axis=1)
    correct = np.floor(guess * rng.uniform(0.2, 0.9, (n, 4)))
    stats = np.column_stack([testlen, testlen + rng.integers(-2, 3, n), guess, correct]).astype(float)
    point = corpus_bleu(stats[None])[0]
    lo, hi = bootstrap_ci(n, lambda idx: corpus_bleu(stats[idx]), BootstrapSettings(500, 0, 0.95))
    assert lo <= point <= hi and hi - lo > 0


def test_paired_bootstrap_identical_runs_and_clear_difference():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, 300)
    boot = BootstrapSettings(1000, 0, 0.95)
    same = paired_bootstrap(300, mean_statistic(a), mean_statistic(a), boot)
    assert same.difference == 0 and same.ci_low == 0 and same.ci_high == 0
    b = a - 0.1 + rng.normal(0, 0.05, 300)
    res = paired_bootstrap(300, mean_statistic(a), mean_statistic(b), boot)
    assert res.difference == pytest.approx(np.mean(a - b))
    assert res.ci_low <= res.difference <= res.ci_high and res.ci_low > 0
    assert res.p_value < 0.01
    noise = paired_bootstrap(300, mean_statistic(a), mean_statistic(a + rng.normal(0, 0.05, 300)), boot)
    assert noise.ci_low < 0 < noise.ci_high and noise.p_value > 0.05
