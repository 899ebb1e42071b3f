"""Baselines: template text, retrieval from other training dialogues with names adapted."""

from __future__ import annotations

import pandas as pd

from ecem.evaluate.baselines import adapt_names, run_baseline
from tests.unit.evaluate_fixtures import annotations

TEMPLATE = {"kind": "template", "template": '{speaker} is {emotion_adj} because of "{utterance}"'}
RETRIEVAL = {"kind": "retrieval", "model": None, "same_emotion": True}


def test_template_baseline_builds_sentences_from_sample_fields():
    ann = annotations()
    preds = run_baseline("template", TEMPLATE, ann, ["test"])
    assert preds["sample_id"].tolist() == ["test/dia0_utt2", "test/dia0_utt3"]
    assert preds["prediction"].tolist() == [
        'Phoebe is surprised because of "No way, you got the part in the play?"',
        'Joey is happy because of "Dinner is finally ready!"',
    ]
    assert preds["reference"].tolist() == ann.set_index("sample_id").loc[preds["sample_id"], "cause"].tolist()
    assert {"sample_id", "prompt", "prediction", "reference"} <= set(preds.columns)
    assert "surprise" in preds["prompt"].iloc[0] and "Phoebe" in preds["prompt"].iloc[0]


def test_retrieval_takes_the_most_similar_training_cause_with_names_adapted():
    ann = annotations()
    preds = run_baseline("retrieval", RETRIEVAL, ann, ["test"]).set_index("sample_id")
    # Phoebe's surprise about the play ↔ Ross's surprise about the play (train, dialogue 3)
    assert preds.loc["test/dia0_utt2", "retrieved_from"] == "train/dia3_utt4"
    assert preds.loc["test/dia0_utt2", "prediction"] == "Phoebe is surprised because Joey got the lead role."
    # Joey's joy about dinner ↔ Joey's joy about dinner in dialogue 1 (same speaker: text unchanged)
    assert preds.loc["test/dia0_utt3", "retrieved_from"] == "train/dia1_utt1"
    train_causes = set(ann.loc[ann["split"] == "train", "cause"])
    test_causes = set(ann.loc[ann["split"] == "test", "cause"])
    assert not set(preds["prediction"]) & test_causes
    assert preds.loc["test/dia0_utt3", "prediction"] in train_causes


def test_retrieval_never_uses_the_samples_own_dialogue():
    ann = annotations()
    preds = run_baseline("retrieval", {**RETRIEVAL, "same_emotion": False}, ann, ["train"]).set_index(
        "sample_id"
    )
    for sid, src in preds["retrieved_from"].items():
        assert sid.split("_utt")[0] != src.split("_utt")[0], (sid, src)


def test_adapt_names_replaces_whole_words_only():
    assert (
        adapt_names("Ross thinks Ross's plan fails; Rossi is fine.", "Ross", "Joey")
        == "Joey thinks Joey's plan fails; Rossi is fine."
    )
    assert adapt_names("Monica smiles.", "Monica", "Monica") == "Monica smiles."


def test_unknown_kind_is_refused():
    import pytest

    with pytest.raises(ValueError, match="unknown kind"):
        run_baseline("x", {"kind": "oracle"}, annotations(), ["test"])
    assert isinstance(annotations(), pd.DataFrame)


def test_zero_shot_baseline_runs_a_local_causal_lm(tmp_path):
    """Zero-shot prompting through transformers, with a tiny random LLaMA saved locally (real classes)."""
    from ecem.fame.tiny import build_tiny_llm

    ann = annotations()
    tiny = {
        "seed": 0,
        "vocab_size": 320,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 128,
    }
    build_tiny_llm(tmp_path / "llm", list(ann["cause"]) * 5 + list(ann["utterance_text"]) * 5, tiny)
    cfg = {
        "kind": "zero_shot",
        "model": str(tmp_path / "llm"),
        "max_new_tokens": 6,
        "prompt": "{speaker} says {utterance} and feels {emotion}. Why?",
        "style": "plain",  # the schema's defaults, which validation fills in
        "system": None,
        "batch_size": 8,
    }
    preds = run_baseline("zs", cfg, ann, ["test"])
    assert preds["sample_id"].tolist() == ["test/dia0_utt2", "test/dia0_utt3"]
    assert preds["prediction"].map(lambda p: isinstance(p, str)).all()
    assert preds["reference"].tolist() == ann.loc[ann["split"] == "test", "cause"].tolist()
