"""Dialogue-grouped, seeded split."""

import numpy as np
import pandas as pd
import pytest

from ecem.dataset.split import grouped_split


def samples(n_dialogues=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"meld_split": "train" if d % 5 else "test", "dialogue_id": d, "utterance_id": u}
            for d in range(n_dialogues) for u in range(int(rng.integers(1, 8)))]
    return pd.DataFrame(rows)


def test_no_dialogue_spans_two_splits_and_ratios_are_close():
    df = samples()
    df["split"] = grouped_split(df, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    assert (df.groupby(["meld_split", "dialogue_id"])["split"].nunique() == 1).all()
    share = df["split"].value_counts(normalize=True)
    assert share["train"] == pytest.approx(0.8, abs=0.08)
    assert set(df["split"]) == {"train", "val", "test"}


def test_seeded_and_deterministic():
    df = samples()
    ratios = {"train": 0.6, "val": 0.2, "test": 0.2}
    a = grouped_split(df, ratios, seed=1)
    assert a.equals(grouped_split(df, ratios, seed=1))
    assert not a.equals(grouped_split(df, ratios, seed=2))


def test_zero_ratio_split_gets_nothing():
    df = samples()
    assert "val" not in set(grouped_split(df, {"train": 0.5, "val": 0.0, "test": 0.5}, seed=0))


def test_bad_ratios():
    with pytest.raises(ValueError):
        grouped_split(samples(), {"train": 1.0, "holdout": 0.1}, seed=0)
