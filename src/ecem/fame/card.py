"""What a FAME-Net run records of itself: the run card (`runs/{experiment}/run_card.json`: config,
seeds, models, data used and left out, training history, hashes of inputs and code, versions) and
the summary of the model that generated artifacts carry."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecem.artifacts import read_metadata
from ecem.fame.data import Encoded
from ecem.fame.inputs import FameInputs, ProjectorScale
from ecem.fame.model import FameModel
from ecem.model_refs import is_random_model, model_card
from ecem.provenance import fingerprint, package_versions, sha256_file

log = logging.getLogger(__name__)
STAGE = "fame"
PACKAGES = ("torch", "transformers", "accelerate", "tokenizers", "safetensors", "numpy", "pandas", "pyarrow")


@dataclass(frozen=True)
class RunIdentity:
    """Everything that defines a training run; its fingerprint marks the run's checkpoints
    (another fingerprint is never resumed) and weights."""

    experiment: str
    fame: Mapping[str, Any]
    train: Mapping[str, Any]
    inputs: Mapping[str, Any]  # sha256 of the input artifacts (`ecem.provenance.describe_inputs`)
    code: Mapping[str, str]  # sha256 of the training code's modules (`ecem.provenance.code_hashes`)
    world_size: int

    @property
    def fingerprint(self) -> str:
        return fingerprint({"experiment": self.experiment, "fame": self.fame, "train": self.train,
                            "inputs": self.inputs, "code": self.code, "world_size": self.world_size})


@dataclass
class TrainingSets:
    """The encoded `train` and `val` examples, and the samples left out of each because their
    prompt alone exceeds `max_length`."""

    train: list[Encoded]
    val: list[Encoded]
    too_long: dict[str, list[str]]
    max_length: int


def over_length(max_length: int, encoded: Mapping[str, list[Encoded]],
                too_long: Mapping[str, list[str]]) -> dict[str, Any]:
    """What `max_length` cut, per split: answers shortened (how many, by how many tokens) and
    samples left out because their prompt alone did not fit. A long cause is otherwise trained
    on silently as its first tokens, or slows every step it is in."""
    cut = {split: [e for e in rows if e.answer_cut] for split, rows in encoded.items()}
    for split, rows in cut.items():
        if rows:
            log.warning("%d %s answers cut to fit max_length %d (by up to %d tokens)", len(rows), split,
                        max_length, max(e.answer_cut for e in rows))
    return {
        "max_length": max_length,
        "answers_cut": {split: len(rows) for split, rows in cut.items()},
        "prompts_too_long": {split: len(ids) for split, ids in too_long.items()},
        "samples": [{"sample_id": e.sample_id, "split": split, "cut": "answer", "tokens_cut": e.answer_cut}
                    for split, rows in cut.items() for e in rows]
        + [{"sample_id": sid, "split": split, "cut": "prompt (left out)", "tokens_cut": None}
           for split, ids in too_long.items() for sid in ids],
    }


def loss_by_epoch(history: list[Mapping[str, Any]]) -> list[dict[str, float]]:
    """The training-loss curve per epoch (mean of the logged step losses): the run card's summary
    of whether training learned anything."""
    epochs: dict[int, list[float]] = {}
    for entry in history:
        epochs.setdefault(int(entry["epoch"]), []).append(float(entry["loss"]))
    return [{"epoch": e, "mean_loss": sum(v) / len(v), "n_logged_steps": len(v)}
            for e, v in sorted(epochs.items())]


def audio_card(audio_path: str | None, model: FameModel, scale: ProjectorScale,
               train_set: list[Encoded]) -> dict[str, Any] | None:
    """The run card's audio entry: the speech encoder (from the audio feature file's metadata),
    A and D, the audio projector's scale, and how many training samples heard audio."""
    if model.audio_projector is None or audio_path is None:
        return None
    settings = read_metadata(audio_path).get("settings", {})
    return {"encoder": {k: settings.get(k) for k in ("model", "backend", "architecture", "random_weights",
                                                     "model_card")},
            "n_tokens": sorted({e.n_audio for e in train_set}), "audio_dim": model.audio_dim,
            "n_train_with_audio": sum(1 for e in train_set if e.n_audio),
            "n_train_without_audio": sum(1 for e in train_set if not e.n_audio),
            "projector_scale": scale.after_training(model)}


def run_card(run: RunIdentity, inputs: FameInputs, model: FameModel, trainable: list[str], sets: TrainingSets,
             scales: tuple[ProjectorScale, ProjectorScale], result: Mapping[str, Any], llm_path: str,
             audio_path: str | None, device: Any) -> dict[str, Any]:
    """The run card of a trained run (`result`: what `ecem.fame.train.train` returned)."""
    video_scale, audio_scale = scales
    return {
        "experiment": run.experiment, "stage": STAGE, "seed": int(run.train["seed"]),
        "config": {"fame": run.fame, "train": run.train, "experiment": inputs.experiment},
        "llm": {"name_or_path": llm_path, "random_weights": is_random_model(llm_path),
                **{k: v for k, v in model_card(llm_path).items() if k in ("model", "stand_in_for", "source")},
                "class": type(model.llm).__name__,
                "n_parameters": sum(p.numel() for p in model.llm.parameters()),
                "dtype": str(next(model.llm.parameters()).dtype)},
        "projector": {"vision_dim": model.vision_dim, "embed_dim": model.embed_dim,
                      "init": run.fame["projector"]["init"] or "random",
                      "scale": video_scale.after_training(model)},
        "audio": audio_card(audio_path, model, audio_scale, sets.train),
        "trainable_parameters": trainable,
        "n_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "n_video_tokens": sorted({e.n_video for e in sets.train}),
        "data": {"n_train": len(sets.train), "n_val": len(sets.val),
                 "n_test_excluded": sum(1 for split in inputs.splits.values() if split == "test"),
                 "train_sample_ids": sorted(e.sample_id for e in sets.train),
                 "val_sample_ids": sorted(e.sample_id for e in sets.val),
                 "over_length": over_length(sets.max_length, {"train": sets.train, "val": sets.val}, sets.too_long)},
        "training": {**{k: v for k, v in result.items() if k != "is_main_process"},
                     "loss_by_epoch": loss_by_epoch(result["history"])},
        "inputs_sha256": run.inputs, "code_sha256": run.code, "versions": package_versions(PACKAGES),
        "device": str(device),
        "fingerprint": run.fingerprint,
    }


def run_card_summary(llm_path: str, model_path: str) -> dict[str, Any]:
    """What generated artifacts record of the model that made them."""
    return {"llm": llm_path, "random_weights": is_random_model(llm_path),
            "llm_card": {k: v for k, v in model_card(llm_path).items() if k in ("model", "stand_in_for")},
            "model_sha256": sha256_file(model_path)}
