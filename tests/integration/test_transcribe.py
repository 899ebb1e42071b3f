"""The transcription stage on the demo corpus (real WhisperX + bundled tiny.en, offline)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecem.artifacts import read_metadata, read_table
from ecem.text_policy import resolve_texts
from ecem.transcribe.wer import wer
from tests.helpers import REPO

pytestmark = pytest.mark.integration

KEYS = ["meld_split", "dialogue_id", "utterance_id"]
SILENT = ("train", 2, 1)


@pytest.fixture(scope="module")
def tables(demo_run: Path) -> dict:
    truth = json.loads((demo_run / "resources/demo/truth.json").read_text())
    return {
        "transcripts": read_table(demo_run / "results/transcripts.parquet"),
        "utterances": read_table(demo_run / "results/ecem/utterances.parquet"),
        "quality": json.loads((demo_run / "results/quality/transcribe.json").read_text()),
        "spoken": {(c["split"], c["dialogue_id"], c["utterance_id"]): c for c in truth["clips"]},
        "config": yaml.safe_load((REPO / "config.yaml").read_text()),
    }


def _key(row) -> tuple:
    return (row.meld_split, int(row.dialogue_id), int(row.utterance_id))


def test_one_row_per_utterance_with_statuses(tables, demo_run):
    tr, utt = tables["transcripts"], tables["utterances"]
    assert len(tr) == len(utt) and not tr.duplicated(KEYS).any()
    merged = utt.merge(tr, on=KEYS, suffixes=("_utt", ""))
    assert len(merged) == len(utt)
    expected = {"ok": "ok", "no_audio": "no_audio", "missing": "failed", "corrupt": "failed"}
    assert (merged["status"] == merged["status_utt"].map(expected)).all()
    assert (merged["dataset_status"] == merged["status_utt"]).all()
    failed = merged[merged["status"] == "failed"]
    assert {_key(r) for r in failed.itertuples()} == {("train", 1, 1), ("train", 2, 3)}
    assert all(st in d for st, d in zip(failed["status_utt"], failed["status_detail"]))
    ok = merged[merged["status"] == "ok"]
    assert ok["text_asr"].str.strip().str.len().gt(0).all()
    assert ok["confidence"].between(0, 1).all() and ok["no_speech_prob"].between(0, 1).all()
    for row in ok.itertuples():  # VAD segment timings lie inside the clip
        assert len(row.segments) >= 1
        assert all(0 <= s["start"] < s["end"] <= row.duration_s + 0.05 for s in row.segments)
        assert row.text_meld == row.text
        assert row.wer_vs_meld == pytest.approx(wer(row.text, row.text_asr))
    settings = read_metadata(demo_run / "results/transcripts.parquet")["settings"]
    assert settings["transcribe"]["model"] == "bundled:tiny.en" and settings["shards"] >= 1


def test_median_wer_against_spoken_text(tables):
    ok = tables["transcripts"][tables["transcripts"]["status"] == "ok"]
    wers = [wer(tables["spoken"][_key(r)]["spoken_text"], r.text_asr) for r in ok.itertuples()]
    assert len(wers) >= 10
    assert float(np.median(wers)) <= 0.35, list(zip(ok["text_asr"], wers))


def test_silent_clip_falls_back_to_meld(tables):
    tr = tables["transcripts"].set_index(KEYS)
    assert tables["spoken"][SILENT]["fault"] == "silent"
    row = tr.loc[SILENT]
    assert row["status"] in ("no_speech", "no_audio") and row["text_asr"] == ""
    assert math.isnan(row["confidence"]) and math.isnan(row["wer_vs_meld"])
    policy = tables["config"]["text_policy"]
    assert policy["mode"] == "asr_if_confident"
    texts = resolve_texts(tables["utterances"], tables["transcripts"], policy).set_index(KEYS)
    meld_text = tables["utterances"].set_index(KEYS).loc[SILENT, "text"]
    assert texts.loc[SILENT, "text_source"] == "meld" and texts.loc[SILENT, "text"] == meld_text
    # confident, MELD-consistent transcripts are used; the others fall back, with a reason
    assert (texts["text_source"] == "asr").sum() >= 5
    for key, row in texts.iterrows():
        t = tr.loc[key]
        if row["text_source"] == "asr":
            assert row["text"] == t["text_asr"] and t["confidence"] >= policy["min_confidence"]
            assert t["wer_vs_meld"] <= policy["max_wer_vs_meld"]
    # mode override: the Table 4 pair
    meld = resolve_texts(tables["utterances"], tables["transcripts"], policy, mode="meld")
    assert set(meld["text_source"]) == {"meld"}


def test_quality_summary(tables):
    q, tr = tables["quality"], tables["transcripts"]
    ok = tr[tr["status"] == "ok"]
    assert q["utterances"] == len(tr) and q["transcribed"] == len(ok)
    assert q["no_speech"] == int((tr["status"] == "no_speech").sum())
    statuses = ("ok", "no_speech", "no_audio", "failed")
    assert q["status_counts"] == {s: int((tr["status"] == s).sum()) for s in statuses}
    assert q["median_wer_vs_meld"] == pytest.approx(float(ok["wer_vs_meld"].median()))
    counts = q["text_policy"]["text_source_counts"]
    assert sum(counts.values()) == len(tr) and counts["asr"] >= 5
    assert len(q["not_transcribed"]) == len(tr) - len(ok)
