"""Dataset statistics from the annotations alone (no clips): samples and dialogues per split,
and per emotion the samples, their share and the causes' length — the numbers behind the paper's
Figures 3 and 4, which the report draws."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ecem.meld import EMOTIONS


def emotion_order(emotions: pd.Series) -> list[str]:
    """MELD's emotions in their usual order, then any other label present."""
    present = set(emotions)
    return [e for e in EMOTIONS if e in present] + sorted(present - set(EMOTIONS))


def cause_words(annotations: pd.DataFrame) -> pd.Series:
    return annotations["cause"].fillna("").str.split().str.len()


def dataset_statistics(annotations: pd.DataFrame) -> dict[str, Any]:
    """Counts per split and per emotion (with the cause length in words) of `annotations.parquet`."""
    words = annotations.assign(cause_words=cause_words(annotations))
    splits = words.groupby("split").agg(samples=("sample_id", "size"),
                                        dialogues=("dialogue_id", lambda s: int(s.astype(str).nunique())))
    emotions = {}
    for emotion in emotion_order(words["emotion"]):
        lengths = words.loc[words["emotion"] == emotion, "cause_words"].to_numpy()
        q1, median, q3 = np.percentile(lengths, [25, 50, 75])
        emotions[emotion] = {"samples": int(len(lengths)), "share": float(len(lengths) / max(len(words), 1)),
                             "cause_words": {"mean": float(np.mean(lengths)), "min": int(np.min(lengths)),
                                             "q1": float(q1), "median": float(median), "q3": float(q3),
                                             "max": int(np.max(lengths))}}
    dialogue_keys = [k for k in ("meld_split", "dialogue_id") if k in words.columns]
    stats = {"samples": int(len(words)), "dialogues": int(words[dialogue_keys].drop_duplicates().shape[0]),
             "by_split": {s: {k: int(v) for k, v in row.items()} for s, row in splits.iterrows()},
             "by_emotion": emotions}
    if "match" in words.columns:  # how annotations were resolved (exact, fuzzy, shifted)
        stats["by_match"] = {str(k): int(v) for k, v in words["match"].value_counts().sort_index().items()}
    return stats
