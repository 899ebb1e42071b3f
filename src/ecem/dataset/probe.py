"""Probe the MELD clips a run touches: frame rate, frames, duration, audio, and a status each."""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from tqdm import tqdm

from ecem.media import probe_clip

log = logging.getLogger(__name__)

USABLE_STATUSES = ("ok", "no_audio")  # the video of a `no_audio` clip is still usable
UTTERANCE_COLUMNS = [
    "meld_split", "dialogue_id", "utterance_id", "speaker", "text", "text_raw", "emotion",
    "start_s", "end_s", "video_path", "fps", "n_frames", "duration_s", "width", "height",
    "has_audio", "audio_peak_dbfs", "status", "status_detail",
]


def touched_utterances(meld: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """MELD rows the samples need: for each dialogue with a sample, utterances 0..last target
    (a sample's clip is its dialogue's prefix up to and including the target)."""
    last = samples.groupby(["meld_split", "dialogue_id"])["utterance_id"].max().rename("last")
    rows = meld.merge(last.reset_index(), on=["meld_split", "dialogue_id"], how="inner")
    rows = rows[rows["utterance_id"] <= rows["last"]].drop(columns="last")
    return rows.sort_values(["meld_split", "dialogue_id", "utterance_id"], ignore_index=True)


def probe_utterances(rows: pd.DataFrame, silence_dbfs: float, threads: int = 1) -> pd.DataFrame:
    """Probe each row's `video_path`; return the rows with the probe's columns added."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        probes = list(tqdm(pool.map(lambda p: probe_clip(p, silence_dbfs), rows["video_path"]),
                           total=len(rows), desc="probe clips", unit="clip"))
    info = pd.DataFrame([dataclasses.asdict(p) for p in probes], index=rows.index)
    out = pd.concat([rows, info], axis=1)
    for status, count in out["status"].value_counts().items():
        log.info("probe: %d clips %s", count, status)
    return out[UTTERANCE_COLUMNS]
