"""The dataset stage's data-quality summary: what was kept, what was quarantined and why."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ecem.meld import UTTERANCE_KEYS


# ECEM causes are a sentence or two (a few hundred characters at most); one far longer is most
# likely pasted text, cut by FAME-Net's max_length and slow to train on, so it is named here.
LONG_CAUSE_CHARS = 1000


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts().sort_index().items()}


def dataset_quality(
    quarantine: pd.DataFrame, samples: pd.DataFrame, utterances: pd.DataFrame,
    segments: pd.DataFrame, clips: pd.DataFrame, n_annotations: int,
) -> dict[str, Any]:
    """Summarise annotations, probing, duplicate removal and clips for the report."""
    bad_utts = utterances[utterances["status"] != "ok"]
    bad_clips = clips[clips["status"] != "ok"]
    adjusted = segments[segments["adjustments"].map(len) > 0]
    return {
        # Every quarantine of the stage by reason: annotation records and MELD CSV rows kept out
        # at ingest, utterance clips not used (by probe status), samples kept out at render.
        "quarantined_by_reason": {
            "annotations": _counts(quarantine["reason"]),
            "utterances": _counts(bad_utts["status"]),
            "samples": _counts(bad_clips["reason"]),
        },
        "annotations": {
            "total": int(n_annotations),
            "resolved": int(len(samples)),
            "by_match": _counts(samples["match"]),
            "quarantined": _counts(quarantine["reason"]),
            "quarantined_rows": quarantine.to_dict("records"),
            "emotion_differs_from_meld": int((samples["emotion"] != samples["meld_emotion"]).sum()),
        },
        "causes": _cause_lengths(samples),
        "splits": {
            split: {"samples": int(len(grp)), "dialogues": int(grp[["meld_split", "dialogue_id"]]
                                                               .drop_duplicates().shape[0])}
            for split, grp in samples.groupby("split")
        },
        "utterances": {
            "touched": int(len(utterances)),
            "by_status": _counts(utterances["status"]),
            "problems": bad_utts[[*UTTERANCE_KEYS, "status",
                                  "status_detail"]].to_dict("records"),
        },
        "dedup": {
            "segments": int(len(segments)),
            "by_overlap_source": _counts(segments["overlap_source"]),
            "frames_removed": int(segments["overlap_frames"].sum()),
            "render_failed": int((segments["status"] != "ok").sum()),
        },
        # Segments brought to their dialogue's format: turned upright, fitted into its size,
        # padded to an even size, resampled to its frame rate (how, in each status_detail).
        "formats": {
            "by_adjustment": _counts(adjusted["adjustments"].explode()),
            "segments": [{**{k: r[k] for k in UTTERANCE_KEYS}, "adjustments": list(r["adjustments"]),
                          "status_detail": r["status_detail"]} for r in adjusted.to_dict("records")],
        },
        "clips": {
            "samples": int(len(clips)),
            "by_status": _counts(clips["status"]),
            "quarantined": bad_clips[["sample_id", "status_detail"]].to_dict("records"),
            "with_skipped_context": int((clips["skipped_utterances"].map(len) > 0).sum()),
            "total_frames": int(clips["n_frames"].sum()),
        },
    }


def _cause_lengths(samples: pd.DataFrame) -> dict[str, Any]:
    """Cause lengths in characters, and the samples whose cause is over LONG_CAUSE_CHARS."""
    chars = samples["cause"].str.len()
    long = samples.loc[chars > LONG_CAUSE_CHARS].assign(chars=chars).sort_values("chars", ascending=False)
    return {
        "max_chars": int(chars.max()) if len(chars) else 0,
        "median_chars": float(chars.median()) if len(chars) else 0.0,
        "long_limit_chars": LONG_CAUSE_CHARS,
        "long": [{"sample_id": r.sample_id, "chars": int(r.chars)} for r in long.itertuples()],
    }
