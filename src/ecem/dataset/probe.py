"""Probe the MELD clips a run touches: frame rate, frames, duration, audio, and a status each."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
from tqdm import tqdm

from ecem.clip_probe import ClipProbe, probe_clip
from ecem.meld import UTTERANCE_KEYS

log = logging.getLogger(__name__)

USABLE_STATUSES = ("ok", "no_audio")  # the video of a `no_audio` clip is still usable
UTTERANCE_COLUMNS = [
    *UTTERANCE_KEYS, "speaker", "text", "text_raw", "emotion",
    "start_s", "end_s", "video_path", "fps", "n_frames", "duration_s", "width", "height",
    "has_audio", "audio_peak_dbfs", "rotation", "variable_rate", "status", "status_detail", "csv_line",
]


def touched_utterances(meld: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """MELD rows the samples need: for each dialogue with a sample, utterances 0..last target
    (a sample's clip is its dialogue's prefix up to and including the target)."""
    last = samples.groupby(["meld_split", "dialogue_id"])["utterance_id"].max().rename("last")
    rows = meld.merge(last.reset_index(), on=["meld_split", "dialogue_id"], how="inner")
    rows = rows[rows["utterance_id"] <= rows["last"]].drop(columns="last")
    return rows.sort_values(UTTERANCE_KEYS, ignore_index=True)


def duration_mismatch(media_s: float, csv_s: float, max_diff_s: float, max_ratio: float) -> str:
    """Why a clip's length disagrees with its CSV times (both beyond the tolerances), or ""."""
    if not (media_s > 0 and csv_s > 0):
        return ""
    ratio = max(media_s / csv_s, csv_s / media_s)
    if abs(media_s - csv_s) > max_diff_s and ratio > max_ratio:
        return (f"clip is {media_s:.2f} s but its CSV times span {csv_s:.2f} s "
                f"({ratio:.1f}x; tolerance {max_diff_s} s or {max_ratio}x)")
    return ""


def _probe_row(row: dict[str, Any], cfg: Mapping[str, Any]) -> ClipProbe:
    """A CSV row with a problem is not probed (its status says why); a probed clip whose length
    disagrees with its CSV times is `duration_mismatch` (wrong clip, or cut wrongly)."""
    if row.get("csv_status"):
        return ClipProbe(row["csv_status"], row["csv_detail"])
    probe = probe_clip(row["video_path"], float(cfg["silence_dbfs"]))
    if probe.status in USABLE_STATUSES:
        why = duration_mismatch(probe.duration_s, float(row["end_s"]) - float(row["start_s"]),
                                float(cfg["max_duration_diff_s"]), float(cfg["max_duration_ratio"]))
        if why:
            return dataclasses.replace(probe, status="duration_mismatch", status_detail=why)
    return probe


def probe_utterances(rows: pd.DataFrame, cfg: Mapping[str, Any], threads: int = 1) -> pd.DataFrame:
    """Probe each row's `video_path` (config: `dataset.probe`); return the rows with the probe's
    columns added."""
    records = rows.to_dict("records")
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        probes = list(tqdm(pool.map(lambda r: _probe_row(r, cfg), records),
                           total=len(rows), desc="probe clips", unit="clip"))
    info = pd.DataFrame([dataclasses.asdict(p) for p in probes], index=rows.index,
                        columns=[f.name for f in dataclasses.fields(ClipProbe)])
    out = pd.concat([rows, info], axis=1)
    for status, count in out["status"].value_counts().items():
        log.info("probe: %d clips %s", count, status)
    return out[UTTERANCE_COLUMNS]
