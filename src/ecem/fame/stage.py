"""Entry points of the FAME-Net rules, one function per rule (training's multi-GPU launcher is
`ecem.fame.launch`; the examples rule's is `ecem.fame.examples`)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ecem.artifacts import atomic_path, read_metadata, read_table, write_json, write_table
from ecem.fame.card import STAGE, RunIdentity, TrainingSets, run_card, run_card_summary
from ecem.fame.data import encode_table
from ecem.fame.inputs import FameInputs, job_device, match_scales
from ecem.fame.model import FameModel
from ecem.fame.trained import TrainedRun
from ecem.provenance import code_hashes, describe_inputs

log = logging.getLogger(__name__)
# The module whose import closure is the training code (named: under a launcher `__name__` may
# be "__main__"); a checkpoint of other code is never resumed.
CODE_ENTRY = "ecem.fame.stage"


# ------------------------------------------------------------------ rule: fame_train
def training_sets(inputs: FameInputs, model: FameModel, tokenizer: Any, prompt_cfg: Mapping[str, Any],
                  max_length: int) -> TrainingSets:
    """The `train` and `val` examples encoded; a sample whose prompt alone exceeds `max_length`
    is left out (and counted)."""
    too_long: dict[str, list[str]] = {"train": [], "val": []}
    train_set, val_set = (encode_table(inputs.split(split), tokenizer, prompt_cfg, model.placeholder_id,
                                       inputs.videos, max_length, True, audios=inputs.audios,
                                       audio_placeholder_id=model.audio_placeholder_id, too_long=too_long[split])
                          for split in ("train", "val"))
    return TrainingSets(train_set, val_set, too_long, max_length)


def run_train(experiment: str, examples_path: str, features_path: str | None, llm_path: str,
              fame_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any], out_model: str, out_card: str,
              ckpt_dir: str, threads: int = 1, audio_path: str | None = None) -> None:
    """Train one experiment: only `train` examples train, `val` picks the checkpoint; writes the
    trainable weights (safetensors) and the run card."""
    from ecem.fame.train import set_seed, train

    torch.set_num_threads(max(1, int(threads)))
    inputs = FameInputs.load(examples_path, features_path, audio_path, ("train", "val"))
    device = job_device()
    set_seed(int(train_cfg["seed"]))  # the projectors' random init depends on it
    model, tokenizer, trainable = inputs.build_model(llm_path, fame_cfg, device)
    sets = training_sets(inputs, model, tokenizer, fame_cfg["prompt"], int(train_cfg["max_length"]))
    if not sets.train:
        raise ValueError(f"{experiment}: no training sample fits train.max_length {sets.max_length}")
    scales = match_scales(model, inputs, sets.train, fame_cfg["projector"]["init"])
    hashes = describe_inputs({"examples": examples_path, "clip_features": features_path, "llm": llm_path,
                              "projector_init": fame_cfg["projector"]["init"], "audio_features": audio_path})
    run = RunIdentity(experiment, fame_cfg, train_cfg, hashes, code_hashes([CODE_ENTRY]),
                      int(os.environ.get("WORLD_SIZE", "1")))
    result = train(model, sets.train, sets.val, inputs.videos, train_cfg, ckpt_dir, run.fingerprint,
                   tokenizer.pad_token_id, splits=inputs.splits, audios=inputs.audios)
    if not result["is_main_process"]:
        return
    card = run_card(run, inputs, model, trainable, sets, scales, result, llm_path, audio_path, device)
    with atomic_path(out_model) as tmp:
        model.save_trainable(tmp, metadata={"experiment": experiment, "fingerprint": run.fingerprint})
    write_json(card, out_card)
    log.info("trained %s: %d steps, selected %s, final train loss %.4f", experiment, result["steps"],
             result["selected"], result["history"][-1]["loss"] if result["history"] else float("nan"))


# ------------------------------------------------------------------ rule: fame_generate
def run_generate(experiment: str, examples_path: str, features_path: str | None, llm_path: str,
                 model_path: str, fame_cfg: Mapping[str, Any], generate_cfg: Mapping[str, Any],
                 reliance_cfg: Mapping[str, Any], max_length: int, out: str, out_reliance: str, threads: int = 1,
                 audio_path: str | None = None) -> None:
    """Explain every example of the configured splits (default: `test`) → predictions.parquet, and
    check the run's modality reliance on the same samples, with the same model, device and batch
    size (`ecem.fame.reliance`) → reliance.parquet. One job, so the LLM loads once."""
    from ecem.fame.reliance import inputs_used, reliance_table

    inputs = FameInputs.load(examples_path, features_path, audio_path, generate_cfg["splits"])
    rows = inputs.examples
    run = TrainedRun.load(inputs, llm_path, model_path, fame_cfg, max_length, threads)
    encoded = run.encode(rows, False)
    table = pd.DataFrame({
        "sample_id": rows["sample_id"], "prompt": rows["prompt"], "prediction": run.generate(rows, generate_cfg, encoded=encoded),
        "reference": rows["reference"], "split": rows["split"], "emotion": rows["emotion"],
        "n_prompt_tokens": [len(e.input_ids) for e in encoded],
    })
    made_by = run_card_summary(llm_path, model_path)
    write_table(table, out, STAGE, {"experiment": experiment, "generate": dict(generate_cfg), **made_by})
    log.info("%s: %d predictions (%s)", experiment, len(table), ", ".join(generate_cfg["splits"]))

    modalities = inputs.modalities
    batch = int(generate_cfg["batch_size"])
    reliance = reliance_table(lambda ex, v, a: run.score(ex, batch, v, a), rows, modalities, fame_cfg["prompt"],
                              reliance_cfg,
                              (lambda ex, v, a: run.generate(ex, generate_cfg, v, a)) if reliance_cfg["generate"]
                              else None)
    write_table(reliance, out_reliance, STAGE, {"experiment": experiment, "reliance": dict(reliance_cfg),
                                                "inputs": inputs_used(modalities),
                                                "splits": list(generate_cfg["splits"]), "batch_size": batch,
                                                "device": str(run.device), **made_by})
    log.info("%s: reliance of %s on %d samples", experiment, ", ".join(inputs_used(modalities)) or "nothing",
             len(rows))


# ------------------------------------------------------------------ rule: fame_quality
def run_quality(experiments: list[str], cards: list[str], predictions: list[str], examples: list[str],
                out: str) -> None:
    """Per experiment: samples used per split, exclusions, steps, losses, selection → quality/train.json."""
    summary: dict[str, Any] = {}
    for name, card_path, pred_path, ex_path in zip(experiments, cards, predictions, examples, strict=True):
        card = json.loads(Path(card_path).read_text())
        hist = card["training"]["history"]
        summary[name] = {
            "examples": read_metadata(ex_path)["settings"]["summary"],
            "n_train": card["data"]["n_train"], "n_val": card["data"]["n_val"],
            "steps": card["training"]["steps"], "selected": card["training"]["selected"],
            "best": card["training"]["best"], "first_loss": hist[0]["loss"] if hist else None,
            "last_loss": hist[-1]["loss"] if hist else None,
            "resumed_from": card["training"]["resumed_from"],
            "random_weights": card["llm"]["random_weights"],
            "n_predictions": int(len(read_table(pred_path, columns=["sample_id"]))),
            "over_max_length": card["data"]["over_length"],
        }
    write_json({"stage": "train", "experiments": summary}, out)
