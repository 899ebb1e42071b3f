"""The report's gallery: a seeded choice of evaluated samples (test samples first), each with
keyframes of its prefix clip, its MELD and ASR text, the face emotion, the reference and every
run's prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecem.evaluate.report_html import array_png_uri
from ecem.meld import UTTERANCE_KEYS


def keyframes(clip_path: str | Path, n_frames: int, n: int, width: int) -> list[str]:
    """`n` evenly spaced frames of a clip as PNG data URIs, `width` pixels wide."""
    from ecem.media import read_frames

    idx = sorted({int(round(x)) for x in np.linspace(0, max(int(n_frames) - 1, 0), n)})
    return [array_png_uri(_resize(f, width)) for f in read_frames(clip_path, idx)]


def _resize(img: np.ndarray, width: int) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    im = Image.fromarray(img).resize((width, max(1, round(h * width / w))))
    return np.asarray(im)


def gallery_view(samples: Sequence[str], ann: pd.DataFrame | None, clips: pd.DataFrame | None,
                 transcripts: pd.DataFrame | None, faces: pd.DataFrame | None,
                 predictions: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Per gallery sample: keyframes of its prefix clip, MELD and ASR text, the face emotion,
    the reference and every run's prediction."""
    if ann is None:
        return {"missing": "annotations.parquet, so no gallery", "notes": [], "samples": []}
    if not samples:
        return {"missing": "samples to show (no predictions in the evaluated splits)", "notes": [], "samples": []}
    notes = [note for absent, note in ((clips is None, "clips.parquet absent: no keyframes"),
                                       (transcripts is None, "transcripts.parquet absent: no ASR transcripts"),
                                       (faces is None, "no per-sample face summary: no facial emotions"))
             if absent]
    by_id = ann.set_index("sample_id")
    shown = []
    for sid in samples:
        if sid not in by_id.index:
            continue
        a = by_id.loc[sid]
        item: dict[str, Any] = {
            "sample_id": sid, "split": a["split"], "emotion": a["emotion"], "speaker": a["speaker"],
            "utterance": a["utterance_text"], "reference": a["cause"], "frames": [],
            "frames_missing": None, "asr": None, "face": None,
            "predictions": [(run, None if p.empty else str(p.iloc[0]["prediction"]))
                            for run, p in ((r, df[df["sample_id"] == sid]) for r, df in predictions.items())],
        }
        if clips is not None:
            row = clips[clips["sample_id"] == sid]
            if row.empty or row.iloc[0]["status"] != "ok" or not Path(str(row.iloc[0]["clip_path"])).is_file():
                item["frames_missing"] = "prefix clip (quarantined or absent)"
            else:
                try:
                    item["frames"] = keyframes(row.iloc[0]["clip_path"], row.iloc[0]["n_frames"],
                                               cfg["keyframes"], cfg["thumb_width"])
                except Exception as err:  # a broken clip must not break the report
                    item["frames_missing"] = f"keyframes ({err})"
        if transcripts is not None:
            t = transcripts
            for k in UTTERANCE_KEYS:
                if k in t.columns and k in a.index:
                    t = t[t[k] == a[k]]
            item["asr"] = ({"text": t.iloc[0]["text_asr"], "status": t.iloc[0].get("status", "")}
                           if not t.empty and "text_asr" in t.columns else {})
        if faces is not None:
            f = faces[faces["sample_id"] == sid]
            item["face"] = {} if f.empty else {
                "emotion": f.iloc[0]["face_emotion"],
                "extra": ", ".join(f"{k}: {f.iloc[0][k]}" for k in ("n_faces", "status") if k in f.columns)}
        shown.append(item)
    return {"missing": None, "notes": notes, "samples": shown}


def pick_gallery(
    ann: pd.DataFrame | None,
    predictions: Mapping[str, pd.DataFrame],
    splits: Sequence[str],
    n: int,
    seed: int,
) -> list[str]:
    """Up to `n` sample ids of `splits` that some run predicted (any, when no run has), shuffled
    with `seed`: test samples first, so the gallery shows test samples when there are enough."""
    if ann is None:
        return []
    ids = set(ann.loc[ann["split"].isin(list(splits)), "sample_id"])
    with_pred = (
        sorted(ids & set().union(*[set(p["sample_id"]) for p in predictions.values()]))
        if predictions
        else sorted(ids)
    )
    split_of = dict(zip(ann["sample_id"], ann["split"]))
    rng = np.random.default_rng(seed)
    test = [s for s in with_pred if split_of.get(s) == "test"]
    rest = [s for s in with_pred if split_of.get(s) != "test"]
    rng.shuffle(test)
    rng.shuffle(rest)
    return (test + rest)[:n]
