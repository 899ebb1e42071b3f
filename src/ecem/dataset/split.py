"""ECEM train/val/test split, grouped by dialogue.

The prefix samples of one dialogue share frames and context, so a per-sample split would leak
test content into training. Whole dialogues (keyed by MELD split + dialogue id) are shuffled with
a seed and dealt, largest deficit first, to the split furthest below its target sample count.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
GROUP_KEYS = ["meld_split", "dialogue_id"]


def grouped_split(samples: pd.DataFrame, ratios: Mapping[str, float], seed: int) -> pd.Series:
    """Assign each sample a split so that no dialogue spans two splits.

    Returns a Series aligned with `samples`. Deterministic for a given seed and sample set.
    """
    unknown = set(ratios) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split names {sorted(unknown)}; expected {SPLITS}")
    total_ratio = sum(ratios.values())
    if total_ratio <= 0:
        raise ValueError("split ratios must sum to a positive number")
    if samples.empty:
        return pd.Series([], dtype=object, index=samples.index)
    sizes = samples.groupby(GROUP_KEYS, sort=True).size()
    order = np.random.default_rng(seed).permutation(len(sizes))
    targets = {s: ratios.get(s, 0.0) / total_ratio * len(samples) for s in SPLITS}
    counts = {s: 0 for s in SPLITS}
    assignment: dict[tuple, str] = {}
    for i in order:
        key, size = sizes.index[i], int(sizes.iloc[i])
        # Deficit relative to target; splits with a zero target never receive a group.
        best = max((s for s in SPLITS if targets[s] > 0), key=lambda s: (targets[s] - counts[s], -SPLITS.index(s)))
        assignment[key] = best
        counts[best] += size
    keys = list(zip(*(samples[k] for k in GROUP_KEYS)))
    return pd.Series([assignment[k] for k in keys], index=samples.index, dtype=object)
