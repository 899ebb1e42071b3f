"""FAME-Net prompts: each experiment of the demo config shows exactly its modalities."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from ecem.fame.prompt import build_examples, build_prompt
from ecem.fame.workflow import example_inputs, text_policy_param
from ecem.modalities import Modalities
from ecem.text_policy import resolve_texts
from tests.helpers import REPO

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
PROMPT = CONFIG["fame"]["prompt"]
EXPERIMENTS = CONFIG["experiments"]
KEYS = ["meld_split", "dialogue_id", "utterance_id"]


def _tables():
    utterances = pd.DataFrame({
        "meld_split": "train", "dialogue_id": 4, "utterance_id": [0, 1, 2],
        "speaker": ["Monica", "Ross", "Phoebe"],
        "text": ["Dinner is ready.", "Is there meat in it?", "I do not eat meat!"],
    })
    annotations = pd.DataFrame({
        "sample_id": ["train/dia4_utt1", "train/dia4_utt2"], "meld_split": "train", "dialogue_id": 4,
        "utterance_id": [1, 2], "speaker": ["Ross", "Phoebe"], "emotion": ["surprise", "anger"],
        "cause": ["Ross wonders about the meat.", "Phoebe is vegetarian and the lasagna has meat."],
        "split": ["train", "test"],
    })
    clips = pd.DataFrame({"sample_id": annotations["sample_id"], "status": "ok"})
    transcripts = pd.DataFrame({
        "meld_split": "train", "dialogue_id": 4, "utterance_id": [0, 1, 2],
        "text_asr": ["dinner is ready", "is there meat in it", "i do not eat meet"],
        "status": "ok", "confidence": 0.9, "wer_vs_meld": [0.0, 0.0, 0.25],
    })
    faces = pd.DataFrame({"sample_id": ["train/dia4_utt2"], "face_emotion": ["disgust"]})
    return annotations, clips, utterances, transcripts, faces


def _markers(prompt: str) -> dict[str, bool]:
    return {
        "video": PROMPT["video_placeholder"] in prompt,
        "text": "Phoebe:" in prompt,
        "face": "facial expression" in prompt,
        "meld_text": "I do not eat meat!" in prompt,
        "asr_text": "i do not eat meet" in prompt,
    }


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_each_ablation_prompt_holds_exactly_its_modalities(name):
    exp = EXPERIMENTS[name]
    annotations, clips, utterances, transcripts, faces = _tables()
    modalities = Modalities.from_experiment(exp)
    texts = resolve_texts(utterances, transcripts, CONFIG["text_policy"], mode=modalities.text_source)
    examples, summary = build_examples(annotations, clips, utterances, texts, faces, modalities, PROMPT,
                                       feature_ids=set(annotations["sample_id"]))
    prompt = examples.set_index("sample_id").loc["train/dia4_utt2", "prompt"]
    m = _markers(prompt)
    assert prompt.startswith("Explain why the emotion of this statement is anger.")  # the user message only:
    assert PROMPT["user"] not in prompt and PROMPT["assistant"] not in prompt  # ecem.chat wraps it
    assert "Explain why the emotion of this statement is anger." in prompt
    assert m["video"] == exp["video"] and prompt.count(PROMPT["video_placeholder"]) == int(exp["video"])
    assert m["face"] == exp["face"] and ("disgust" in prompt) == exp["face"]
    assert m["text"] == exp["text"]
    assert m["meld_text"] == (exp["text"] and exp["text_source"] == "meld")
    assert m["asr_text"] == (exp["text"] and exp["text_source"] != "meld")
    assert "Dinner is ready" not in prompt and "dinner is ready" not in prompt  # no context turns
    assert "Phoebe is vegetarian" not in prompt  # the answer never leaks into the prompt
    # the workflow asks for exactly the artifacts the modalities need
    inputs = example_inputs(modalities, {n: f"{n}.parquet" for n in ("annotations", "clips", "utterances", "features",
                                                               "audio", "faces", "transcripts")})
    assert ("features" in inputs) == exp["video"] and ("faces" in inputs) == exp["face"]
    assert ("audio" in inputs) == modalities.audio
    assert ("transcripts" in inputs) == (exp["text"] and exp["text_source"] != "meld")
    assert (text_policy_param(modalities, CONFIG) is not None) == ("transcripts" in inputs)


def test_the_demo_config_has_the_papers_ablations_and_the_table4_pair():
    combos = {(e["video"], e["text"], e["face"]) for e in EXPERIMENTS.values()}
    assert {(True, False, False), (True, False, True), (True, True, False), (True, True, True)} <= combos
    full = [e["text_source"] for e in EXPERIMENTS.values() if e["video"] and e["text"] and e["face"]]
    assert "meld" in full and any(s != "meld" for s in full)


def test_order_context_turns_and_missing_face():
    m = Modalities(video=True, text=True, face=True, context_turns=1)
    sample = {"emotion": "joy", "speaker": "Joey", "text": "Great!", "context": [("A", "one"), ("B", "two")],
              "face_emotion": None}
    prompt = build_prompt(sample, m, PROMPT)
    order = [prompt.index(s) for s in ("Explain", "B: two", "<Joey: Great!>", "<video>", "no visible face")]
    assert order == sorted(order) and "A: one" not in prompt


def test_unusable_samples_are_counted_not_hidden():
    annotations, clips, utterances, transcripts, faces = _tables()
    clips.loc[0, "status"] = "quarantined"
    m = Modalities.from_experiment(EXPERIMENTS["V+E"])
    examples, summary = build_examples(annotations, clips, utterances, None, faces, m, PROMPT,
                                       feature_ids=set())
    assert examples.empty
    assert summary["excluded"] == {"clip_not_ok": 1, "no_clip_features": 1}


def test_dialogue_context_is_the_earlier_turns_with_a_text_in_utterance_order():
    from ecem.fame.prompt import _PromptSources

    texts = pd.DataFrame({  # out of order; another dialogue and another split share utterance ids
        "meld_split": ["train", "train", "train", "train", "dev", "train"],
        "dialogue_id": [4, 4, 4, 5, 4, 4], "utterance_id": [3, 0, 2, 1, 1, 5],
        "text": [" c ", "a", None, "other dialogue", "other split", "later"],
    })
    utterances = pd.DataFrame({"meld_split": "train", "dialogue_id": 4, "utterance_id": [0, 2],
                               "speaker": ["Monica", "Ross"]})
    sources = _PromptSources.index(utterances, texts, None, Modalities(video=False, text=True, face=False, context_turns=3), None)
    # utterance 1 has no text row; 3's speaker is not among the utterances; a missing text is ""
    assert sources.context(("train", 4, 5)) == [("Monica", "a"), ("Ross", ""), ("", "c")]
    assert sources.context(("train", 4, 0)) == []  # the first utterance has no context
    assert sources.context(("train", 9, 3)) == []  # a dialogue without texts
