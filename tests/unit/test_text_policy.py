"""The text-source policy: ecem.text_policy.resolve_texts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ecem.text_policy import resolve_texts

POLICY = {"mode": "asr_if_confident", "min_confidence": 0.5, "max_wer_vs_meld": 0.4}


def _utterances() -> pd.DataFrame:
    return pd.DataFrame({
        "meld_split": ["train"] * 6,
        "dialogue_id": [0, 0, 0, 1, 1, 2],
        "utterance_id": [0, 1, 2, 0, 1, 0],
        "text": ["meld zero", "meld one", "meld two", "meld three", "meld four", "meld five"],
        "speaker": list("ABCDEF"),
    })


def _transcripts() -> pd.DataFrame:
    nan = math.nan
    return pd.DataFrame({
        "meld_split": ["train"] * 5,
        "dialogue_id": [0, 0, 0, 1, 1],
        "utterance_id": [0, 1, 2, 0, 1],
        "text_asr": ["asr zero", "asr one", "asr two", "", ""],
        "status": ["ok", "ok", "ok", "no_speech", "failed"],
        "confidence": [0.9, 0.3, 0.8, nan, nan],   # 1: not confident
        "wer_vs_meld": [0.2, 0.1, 0.9, nan, nan],  # 2: disagrees with MELD too much
    })  # dialogue 2 has no transcript row at all


def test_asr_if_confident_uses_asr_only_where_both_thresholds_pass():
    out = resolve_texts(_utterances(), _transcripts(), POLICY)
    assert list(out.columns[:5]) == ["meld_split", "dialogue_id", "utterance_id", "text", "text_source"]
    assert out["text_source"].tolist() == ["asr", "meld", "meld", "meld", "meld", "meld"]
    assert out["text"].tolist() == ["asr zero", "meld one", "meld two", "meld three", "meld four",
                                    "meld five"]
    reasons = out["text_reason"].tolist()
    assert "confidence" in reasons[1] and "wer_vs_meld" in reasons[2]
    assert reasons[3] == "asr status no_speech" and reasons[4] == "asr status failed"
    assert reasons[5] == "no transcript"


def test_mode_override_asr_and_meld():
    asr = resolve_texts(_utterances(), _transcripts(), POLICY, mode="asr")
    assert asr["text"].tolist() == ["asr zero", "asr one", "asr two", "meld three", "meld four",
                                    "meld five"]
    assert asr["text_source"].tolist() == ["asr"] * 3 + ["meld"] * 3
    meld = resolve_texts(_utterances(), _transcripts(), POLICY, mode="meld")
    assert meld["text"].tolist() == _utterances()["text"].tolist()
    assert set(meld["text_source"]) == {"meld"}


def test_thresholds_are_inclusive_and_move_the_choice():
    strict = {**POLICY, "min_confidence": 0.9, "max_wer_vs_meld": 0.2}
    assert resolve_texts(_utterances(), _transcripts(), strict)["text_source"].tolist()[0] == "asr"
    stricter = {**POLICY, "min_confidence": 0.95}
    assert resolve_texts(_utterances(), _transcripts(), stricter)["text_source"].tolist()[0] == "meld"
    lax = {**POLICY, "min_confidence": 0.0, "max_wer_vs_meld": 1.0}
    assert resolve_texts(_utterances(), _transcripts(), lax)["text_source"].tolist()[:3] == ["asr"] * 3


def test_keeps_order_keys_and_dtypes():
    utt = _utterances().iloc[::-1].reset_index(drop=True)
    out = resolve_texts(utt, _transcripts(), POLICY)
    assert out[["meld_split", "dialogue_id", "utterance_id"]].equals(
        utt[["meld_split", "dialogue_id", "utterance_id"]])
    assert out["dialogue_id"].dtype == utt["dialogue_id"].dtype


def test_meld_mode_needs_no_transcripts_but_others_do():
    out = resolve_texts(_utterances(), None, {"mode": "meld"})
    assert set(out["text_source"]) == {"meld"}
    with pytest.raises(ValueError, match="needs the transcripts"):
        resolve_texts(_utterances(), None, POLICY)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="not one of"):
        resolve_texts(_utterances(), _transcripts(), POLICY, mode="whisper")
    with pytest.raises(ValueError, match="min_confidence"):
        resolve_texts(_utterances(), _transcripts(), {"mode": "asr_if_confident"})
    dup = pd.concat([_transcripts(), _transcripts().iloc[:1]])
    with pytest.raises(ValueError, match="duplicate"):
        resolve_texts(_utterances(), dup, POLICY)
