"""The text-source policy: which text (MELD's or WhisperX's) each utterance uses downstream.

`resolve_texts` is the ONE place this is decided; the paper's Table 4 pair of experiments
(MELD text vs. "improved" WhisperX text) differ only by the `mode` passed to it.

Modes (config section `text_policy:`):
- `meld`: always MELD's (repaired) text.
- `asr`: the ASR text wherever the transcript is usable (`status == ok` and non-empty text);
  utterances without one (no speech found, no audio, missing/corrupt clip, not transcribed)
  fall back to MELD's text.
- `asr_if_confident`: the ASR text only where it is usable AND `confidence >= min_confidence`
  AND `wer_vs_meld <= max_wer_vs_meld` (a transcript that disagrees with MELD on most words is
  more likely an ASR failure than a MELD typo); MELD's text otherwise.

`confidence` is exp(mean token log-probability) of the transcript, in (0, 1]. Every row also
says why its source was chosen (`text_reason`), so a run can count its fallbacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ecem.meld import UTTERANCE_KEYS

MODES = ("meld", "asr", "asr_if_confident")
COLUMNS = [*UTTERANCE_KEYS, "text", "text_source", "text_reason"]


def _check_policy(policy: Mapping[str, Any], mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"text_policy mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "asr_if_confident":
        for key in ("min_confidence", "max_wer_vs_meld"):
            if key not in policy:
                raise ValueError(f"text_policy mode asr_if_confident needs text_policy.{key}")


def _choose(row: Mapping[str, Any], mode: str, policy: Mapping[str, Any]) -> tuple[str, str]:
    """(text_source, reason) for one utterance row joined with its transcript."""
    if mode == "meld":
        return "meld", "policy meld"
    status = row.get("status_asr")
    if not isinstance(status, str):
        return "meld", "no transcript"
    if status != "ok":
        return "meld", f"asr status {status}"
    text = row.get("text_asr")
    if not isinstance(text, str) or not text.strip():
        return "meld", "asr text empty"
    if mode == "asr":
        return "asr", "policy asr"
    conf, wer = row.get("confidence"), row.get("wer_vs_meld")
    min_conf, max_wer = float(policy["min_confidence"]), float(policy["max_wer_vs_meld"])
    if conf is None or not math.isfinite(conf) or conf < min_conf:
        return "meld", f"confidence {conf:.3f} < {min_conf}" if conf is not None else "no confidence"
    if wer is None or not math.isfinite(wer) or wer > max_wer:
        return "meld", f"wer_vs_meld {wer:.3f} > {max_wer}" if wer is not None else "no wer"
    return "asr", f"confidence {conf:.3f} >= {min_conf}, wer_vs_meld {wer:.3f} <= {max_wer}"


def resolve_texts(utterances: pd.DataFrame, transcripts: pd.DataFrame | None,
                  policy: Mapping[str, Any], mode: str | None = None) -> pd.DataFrame:
    """One row per utterance: `meld_split, dialogue_id, utterance_id, text, text_source`
    (`meld` | `asr`) and `text_reason`, in the order of `utterances`.

    `utterances` needs the keys and MELD's `text` (as in `results/ecem/utterances.parquet`);
    `transcripts` is `results/transcripts.parquet` (keys, `text_asr, status, confidence,
    wer_vs_meld`) or None, allowed only when the mode is `meld`. `mode` overrides
    `policy["mode"]`.
    """
    mode = mode if mode is not None else policy.get("mode")
    _check_policy(policy, str(mode))
    missing = [c for c in (*UTTERANCE_KEYS, "text") if c not in utterances.columns]
    if missing:
        raise ValueError(f"utterances lack column(s) {missing}")
    if utterances.duplicated(UTTERANCE_KEYS).any():
        raise ValueError("utterances hold duplicate (meld_split, dialogue_id, utterance_id) keys")
    base = utterances[[*UTTERANCE_KEYS, "text"]].reset_index(drop=True)
    if transcripts is None:
        if mode != "meld":
            raise ValueError(f"text_policy mode {mode!r} needs the transcripts table")
        joined = base.assign(status_asr=None, text_asr=None, confidence=None, wer_vs_meld=None)
    else:
        cols = [*UTTERANCE_KEYS, "text_asr", "status", "confidence", "wer_vs_meld"]
        lacking = [c for c in cols if c not in transcripts.columns]
        if lacking:
            raise ValueError(f"transcripts lack column(s) {lacking}")
        if transcripts.duplicated(UTTERANCE_KEYS).any():
            raise ValueError("transcripts hold duplicate utterance keys")
        tr = transcripts[cols].rename(columns={"status": "status_asr"})
        joined = base.merge(tr, on=UTTERANCE_KEYS, how="left", validate="one_to_one")
    rows = []
    for rec in joined.to_dict("records"):
        rec = {k: (None if _is_nan(v) else v) for k, v in rec.items()}
        source, reason = _choose(rec, str(mode), policy)
        text = rec["text_asr"] if source == "asr" else rec["text"]
        rows.append({**{k: rec[k] for k in UTTERANCE_KEYS}, "text": text, "text_source": source,
                     "text_reason": reason})
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["dialogue_id"] = out["dialogue_id"].astype(utterances["dialogue_id"].dtype)
    out["utterance_id"] = out["utterance_id"].astype(utterances["utterance_id"].dtype)
    return out


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
