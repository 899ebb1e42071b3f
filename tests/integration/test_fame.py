"""FAME-Net on the demo workflow: every experiment trained and generated offline, honestly labelled."""

from __future__ import annotations

import json

import pytest
import yaml
from safetensors.torch import load_file

from ecem import model_refs
from ecem.artifacts import read_metadata, read_table
from tests.helpers import REPO, planned_jobs

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
EXPERIMENTS = CONFIG["experiments"]
PROMPT = CONFIG["fame"]["prompt"]


@pytest.fixture(scope="module")
def samples(demo_run):
    ann = read_table(demo_run / "results/ecem/annotations.parquet")
    clips = read_table(demo_run / "results/ecem/clips.parquet")
    return ann[ann["sample_id"].isin(clips.loc[clips["status"] == "ok", "sample_id"])]


def test_tiny_llm_is_built_and_marked_random(demo_run):
    llm = demo_run / model_refs.location(CONFIG["fame"]["llm"])
    assert llm.parent == demo_run / "resources/models"
    assert (llm / "config.json").exists() and (llm / "tokenizer.json").exists()
    assert json.loads((llm / "ecem_model.json").read_text())["random_weights"] is True


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
    assert card["llm"]["random_weights"] is True and card["seed"] == CONFIG["train"]["seed"]
    assert card["config"]["train"] == CONFIG["train"]
    assert set(card["inputs_sha256"]) >= {"examples", "clip_features", "llm"}
    assert card["versions"]["torch"] and card["versions"]["transformers"]
    # only the trainable weights are saved
    weights = load_file(str(run / "model.safetensors"))
    assert sorted(weights) == ["projector.bias", "projector.weight"]
    assert tuple(weights["projector.weight"].shape) == (CONFIG["fame"]["tiny_llm"]["hidden_size"],
                                                       card["projector"]["vision_dim"])
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
        assert ("facial expression" in prompt) == exp["face"]
        assert (f"<{speaker_of[sid]}:" in prompt) == exp["text"]
    meta = read_metadata(run / "predictions.parquet")["settings"]
    assert meta["random_weights"] is True and meta["generate"] == CONFIG["generate"]


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
        assert summary["random_weights"] is True


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
