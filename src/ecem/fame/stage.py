"""Entry points of the FAME-Net rules, one function per rule (training's multi-GPU launcher is
`ecem.fame.launch`)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ecem.artifacts import atomic_path, read_metadata, read_table, write_json, write_table
from ecem.devices import resolve_device
from ecem.fame.data import Encoded, PromptTooLong, Slot, encode
from ecem.fame.model import FameModel, ensure_placeholder, load_llm, resolve_dtype
from ecem.fame.prompt import Modalities
from ecem.chat import PromptFormat
from ecem.model_refs import is_random_model, model_card
from ecem.provenance import code_hashes, describe_inputs, fingerprint, package_versions, sha256_file
from ecem.tokens import TokenStore

log = logging.getLogger(__name__)
STAGE = "fame"
PACKAGES = ("torch", "transformers", "accelerate", "tokenizers", "safetensors", "numpy", "pandas", "pyarrow")
# The module whose import closure is the training code (named: under a launcher `__name__` may
# be "__main__"); a checkpoint of other code is never resumed.
CODE_ENTRY = "ecem.fame.stage"
NORM_SAMPLES = 64  # samples whose tokens measure the projector's output scale


def load_videos(features_path: str | None, sample_ids: list[str]) -> Mapping[str, np.ndarray]:
    """The samples' video tokens, read from disk as batches need them (memory flat in the number
    of samples; see `ecem.tokens.TokenStore`)."""
    if features_path is None or not sample_ids:
        return {}
    tokens = TokenStore(features_path, sample_ids)
    missing = sorted(set(sample_ids) - set(tokens))
    if missing:
        raise KeyError(f"{features_path}: no video tokens for {missing[:5]}")
    return tokens


def load_audios(audio_path: str | None, examples: pd.DataFrame, placeholder: str) -> TokenStore | None:
    """The audio tokens of the examples whose prompt has the audio placeholder, read lazily like
    the video tokens; None for an experiment without audio (no `audio_path`). An experiment with
    audio always gets a store (maybe empty: every sample `no_audio`), so its model always has the
    audio projector, in training and in generation alike."""
    ids = examples.loc[examples["prompt"].str.contains(placeholder, regex=False), "sample_id"].tolist()
    if audio_path is None:
        if ids:
            raise ValueError("prompts have audio placeholders but no audio features were given")
        return None
    store = TokenStore(audio_path, ids)
    missing = sorted(set(ids) - set(store))
    if missing:
        raise KeyError(f"{audio_path}: no audio tokens for {missing[:5]}")
    return store


def norm_sample(videos: Mapping[str, np.ndarray], sample_ids: list[str], limit: int = NORM_SAMPLES) -> np.ndarray | None:
    """The video tokens of at most `limit` of `sample_ids` (evenly spaced in sorted order),
    stacked: what the projector's scale is measured on. Bounded, so measuring it costs the same
    at any dataset size (the mean norm of 64 × T+N tokens is stable to well under 1%)."""
    ids = sorted(s for s in set(sample_ids) if s in videos)
    if not ids:
        return None
    if len(ids) > limit:
        ids = [ids[int(i)] for i in np.linspace(0, len(ids) - 1, limit).round()]
    return np.concatenate([videos[s] for s in ids])


# ------------------------------------------------------------------ model assembly
def _vision_dim(videos: Mapping[str, np.ndarray], features_path: str | None) -> int:
    if videos:
        return int(next(iter(videos.values())).shape[1])
    if features_path:  # a model without video examples still needs D for the projector's shape
        store = TokenStore(features_path)
        if len(store):
            return store.shape[1]
    return 1


def build_model(llm_path: str, fame_cfg: Mapping[str, Any], vision_dim: int,
                device: torch.device, audio_dim: int | None = None) -> tuple[FameModel, Any, list[str]]:
    """FAME-Net around the LLM: the video projector, and an audio projector when `audio_dim`."""
    dtype = resolve_dtype(fame_cfg["dtype"], device)
    llm, tokenizer = load_llm(llm_path, dtype)
    placeholder_id = ensure_placeholder(tokenizer, fame_cfg["prompt"]["video_placeholder"])
    audio_id = ensure_placeholder(tokenizer, fame_cfg["prompt"]["audio_placeholder"]) if audio_dim else None
    model = FameModel(llm, vision_dim, placeholder_id, audio_dim, audio_id)
    model.init_projector(fame_cfg["projector"]["init"], fame_cfg["projector"]["key_prefix"])
    trainable = model.set_trainable(fame_cfg["trainable"])
    return model, tokenizer, trainable


def video_token_counts(videos: Mapping[str, np.ndarray]) -> dict[str, int]:
    """{sample_id: tokens} (T+N for video, A for audio), without reading a token store's
    samples (they share one shape)."""
    if isinstance(videos, TokenStore):
        return dict.fromkeys(videos, videos.shape[0])
    return {sid: int(v.shape[0]) for sid, v in videos.items()}


def encode_table(examples: pd.DataFrame, tokenizer: Any, prompt_cfg: Mapping[str, Any], placeholder_id: int,
                 videos: Mapping[str, np.ndarray], max_length: int, with_answer: bool,
                 audios: Mapping[str, np.ndarray] | None = None,
                 audio_placeholder_id: int | None = None, too_long: list[str] | None = None) -> list[Encoded]:
    """Every example encoded. With `too_long` given, a sample whose prompt alone exceeds
    `max_length` is left out and its id appended there; without it, such a prompt is an error."""
    fmt = PromptFormat.from_config(prompt_cfg)
    counts = video_token_counts(videos)
    audio_counts = video_token_counts(audios) if audios is not None else {}

    def audio_slot(sample_id: str) -> Slot | None:
        if audio_placeholder_id is None:
            return None
        return Slot(prompt_cfg["audio_placeholder"], audio_placeholder_id, audio_counts.get(sample_id, 0))

    out = []
    for r in examples.itertuples(index=False):
        try:
            out.append(encode(tokenizer, r.sample_id, r.prompt, r.reference if with_answer else None, fmt,
                              prompt_cfg["video_placeholder"], placeholder_id, counts.get(r.sample_id, 0),
                              max_length, audio_slot(r.sample_id)))
        except PromptTooLong as err:
            if too_long is None:
                raise
            log.warning("left out of training: %s", err)
            too_long.append(r.sample_id)
    return out


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


def _device() -> torch.device:
    """CUDA when there is one (this process's GPU under `accelerate launch`), else the CPU."""
    device = resolve_device("auto")
    return torch.device(device, int(os.environ.get("LOCAL_RANK", "0"))) if device == "cuda" else torch.device(device)


def audio_card(audio_path: str | None, model: FameModel, scale: Mapping[str, Any],
               train_audio: np.ndarray | None, train_set: list[Encoded]) -> dict[str, Any] | None:
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
            "projector_scale": {**scale, "after_training": model.projection_norms(train_audio, modality="audio")
                                if train_audio is not None else None}}


# ------------------------------------------------------------------ rule: fame_train
def loss_by_epoch(history: list[Mapping[str, Any]]) -> list[dict[str, float]]:
    """The training-loss curve per epoch (mean of the logged step losses): the run card's summary
    of whether training learned anything."""
    epochs: dict[int, list[float]] = {}
    for entry in history:
        epochs.setdefault(int(entry["epoch"]), []).append(float(entry["loss"]))
    return [{"epoch": e, "mean_loss": sum(v) / len(v), "n_logged_steps": len(v)}
            for e, v in sorted(epochs.items())]


def run_train(experiment: str, examples_path: str, features_path: str | None, llm_path: str,
              fame_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any], out_model: str, out_card: str,
              ckpt_dir: str, threads: int = 1, audio_path: str | None = None) -> None:
    """Train one experiment: only `train` examples train, `val` picks the checkpoint; writes the
    trainable weights (safetensors) and the run card."""
    from ecem.fame.train import set_seed, train

    torch.set_num_threads(max(1, int(threads)))
    examples = read_table(examples_path)
    train_rows = examples[examples["split"] == "train"]
    val_rows = examples[examples["split"] == "val"]
    ids = sorted(set(train_rows["sample_id"]) | set(val_rows["sample_id"]))
    placeholder = fame_cfg["prompt"]["video_placeholder"]
    uses_video = bool(examples["prompt"].str.contains(placeholder, regex=False).any())
    videos = load_videos(features_path, ids) if uses_video else {}
    audios = load_audios(audio_path, examples[examples["sample_id"].isin(ids)], fame_cfg["prompt"]["audio_placeholder"])
    device = _device()
    seed = int(train_cfg["seed"])
    set_seed(seed)  # the projectors' random init depends on it
    model, tokenizer, trainable = build_model(llm_path, fame_cfg, _vision_dim(videos, features_path), device,
                                              audios.shape[1] if audios is not None else None)
    max_len = int(train_cfg["max_length"])
    prompt_cfg = fame_cfg["prompt"]
    too_long: dict[str, list[str]] = {"train": [], "val": []}
    train_set, val_set = (encode_table(rows, tokenizer, prompt_cfg, model.placeholder_id, videos, max_len, True,
                                       audios=audios, audio_placeholder_id=model.audio_placeholder_id,
                                       too_long=too_long[split])
                          for split, rows in (("train", train_rows), ("val", val_rows)))
    if not train_set:
        raise ValueError(f"{experiment}: no training sample fits train.max_length {max_len}")
    train_video = norm_sample(videos, [e.sample_id for e in train_set if e.n_video])
    train_audio = norm_sample(audios, [e.sample_id for e in train_set if e.n_audio]) if audios is not None else None
    scale: dict[str, Any] = {}
    if train_video is not None and fame_cfg["projector"]["init"] is None:
        scale = model.match_embedding_scale(train_video)
    audio_scale: dict[str, Any] = {}
    if train_audio is not None:  # the audio projector is always new: no LLaVA checkpoint has one
        audio_scale = model.match_embedding_scale(train_audio, modality="audio")
    inputs = describe_inputs({"examples": examples_path, "clip_features": features_path, "llm": llm_path,
                              "projector_init": fame_cfg["projector"]["init"], "audio_features": audio_path})
    fp = fingerprint({"experiment": experiment, "fame": fame_cfg, "train": train_cfg, "inputs": inputs,
                      "code": code_hashes([CODE_ENTRY]), "world_size": int(os.environ.get("WORLD_SIZE", "1"))})
    result = train(model, train_set, val_set, videos, train_cfg, ckpt_dir, fp, tokenizer.pad_token_id,
                   splits=dict(zip(examples["sample_id"], examples["split"], strict=True)), audios=audios)
    if not result["is_main_process"]:
        return
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    card = {
        "experiment": experiment, "stage": STAGE, "seed": seed,
        "config": {"fame": fame_cfg, "train": train_cfg,
                   "experiment": read_metadata(examples_path)["settings"].get("modalities")},
        "llm": {"name_or_path": llm_path, "random_weights": is_random_model(llm_path),
                **{k: v for k, v in model_card(llm_path).items() if k in ("model", "stand_in_for", "source")},
                "class": type(model.llm).__name__,
                "n_parameters": sum(p.numel() for p in model.llm.parameters()),
                "dtype": str(next(model.llm.parameters()).dtype)},
        "projector": {"vision_dim": model.vision_dim, "embed_dim": model.embed_dim,
                      "init": fame_cfg["projector"]["init"] or "random",
                      "scale": {**scale, "after_training": model.projection_norms(train_video)
                                if train_video is not None else None}},
        "audio": audio_card(audio_path, model, audio_scale, train_audio, train_set),
        "trainable_parameters": trainable, "n_trainable": n_trainable,
        "n_video_tokens": sorted({e.n_video for e in train_set}),
        "data": {"n_train": len(train_set), "n_val": len(val_set),
                 "n_test_excluded": int((examples["split"] == "test").sum()),
                 "train_sample_ids": sorted(e.sample_id for e in train_set),
                 "val_sample_ids": sorted(e.sample_id for e in val_set),
                 "over_length": over_length(max_len, {"train": train_set, "val": val_set}, too_long)},
        "training": {**{k: v for k, v in result.items() if k != "is_main_process"},
                     "loss_by_epoch": loss_by_epoch(result["history"])},
        "inputs_sha256": inputs, "code_sha256": code_hashes([CODE_ENTRY]), "versions": package_versions(PACKAGES),
        "device": str(device),
        "fingerprint": fp,
    }
    with atomic_path(out_model) as tmp:
        model.save_trainable(tmp, metadata={"experiment": experiment, "fingerprint": fp})
    write_json(card, out_card)
    log.info("trained %s: %d steps, selected %s, final train loss %.4f", experiment, result["steps"],
             result["selected"], result["history"][-1]["loss"] if result["history"] else float("nan"))


# ------------------------------------------------------------------ a trained run
@dataclass
class TrainedRun:
    """A trained run ready to use: the model with its trained weights on this job's device, the
    tokenizer, and the video and audio tokens of the samples it is used on. Generation, the
    reliance check and `ecem explain` go through it, so they encode and decode alike."""

    model: FameModel
    tokenizer: Any
    videos: Mapping[str, np.ndarray]
    audios: TokenStore | None
    device: torch.device
    prompt_cfg: Mapping[str, Any]
    max_length: int

    @classmethod
    def load(cls, llm_path: str, model_path: str, fame_cfg: Mapping[str, Any], max_length: int,
             videos: Mapping[str, np.ndarray], audios: TokenStore | None, features_path: str | None = None,
             threads: int = 1, device: str | None = None, audio_dim: int | None = None) -> TrainedRun:
        """`device`: default the job's (CUDA when there is one); `audio_dim`: the audio tokens'
        width when `audios` cannot tell (an audio run given no audio)."""
        torch.set_num_threads(max(1, int(threads)))
        device = torch.device(device) if device is not None else _device()
        if audio_dim is None and audios is not None:
            audio_dim = audios.shape[1]
        model, tokenizer, _ = build_model(llm_path, fame_cfg, _vision_dim(videos, features_path), device, audio_dim)
        model.load_trainable(model_path)
        model.to(device)
        return cls(model, tokenizer, videos, audios, device, fame_cfg["prompt"], int(max_length))

    def encode(self, examples: pd.DataFrame, with_answer: bool) -> list[Encoded]:
        return encode_table(examples, self.tokenizer, self.prompt_cfg, self.model.placeholder_id, self.videos,
                            self.max_length, with_answer, audios=self.audios,
                            audio_placeholder_id=self.model.audio_placeholder_id)

    def tokens(self, video_source: Mapping[str, str] | None = None,
               audio_source: Mapping[str, str] | None = None) -> tuple[Any, Any]:
        """The video and audio tokens, each seen through a partner map when given
        (`ecem.fame.reliance.SwappedTokens`: sample → whose tokens it gets)."""
        from ecem.fame.reliance import SwappedTokens

        videos = SwappedTokens(self.videos, video_source) if video_source and self.videos else self.videos
        audios = SwappedTokens(self.audios, audio_source) if audio_source and self.audios is not None else self.audios
        return videos, audios

    def generate(self, examples: pd.DataFrame, generate_cfg: Mapping[str, Any],
                 video_source: Mapping[str, str] | None = None,
                 audio_source: Mapping[str, str] | None = None) -> list[str]:
        """One explanation per example, decoded with `generate_cfg` (`ecem.fame.generate`)."""
        from ecem.fame.generate import generate

        encoded = self.encode(examples, False)
        videos, audios = self.tokens(video_source, audio_source)
        return generate(self.model, self.tokenizer, encoded, videos, generate_cfg, self.device, audios) if encoded else []

    def score(self, examples: pd.DataFrame, batch_size: int, video_source: Mapping[str, str] | None = None,
              audio_source: Mapping[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per example: the summed NLL of its reference answer's tokens and their number."""
        from ecem.fame.generate import score_answers

        videos, audios = self.tokens(video_source, audio_source)
        return score_answers(self.model, self.tokenizer, self.encode(examples, True), videos, batch_size, self.device,
                             audios)


def run_card_summary(llm_path: str, model_path: str) -> dict[str, Any]:
    """What generated artifacts record of the model that made them."""
    return {"llm": llm_path, "random_weights": is_random_model(llm_path),
            "llm_card": {k: v for k, v in model_card(llm_path).items() if k in ("model", "stand_in_for")},
            "model_sha256": sha256_file(model_path)}


# ------------------------------------------------------------------ rule: fame_generate
def run_generate(experiment: str, examples_path: str, features_path: str | None, llm_path: str,
                 model_path: str, fame_cfg: Mapping[str, Any], generate_cfg: Mapping[str, Any],
                 reliance_cfg: Mapping[str, Any], max_length: int, out: str, out_reliance: str, threads: int = 1,
                 audio_path: str | None = None) -> None:
    """Explain every example of the configured splits (default: `test`) → predictions.parquet, and
    check the run's modality reliance on the same samples, with the same model, device and batch
    size (`ecem.fame.reliance`) → reliance.parquet. One job, so the LLM loads once."""
    from ecem.fame.reliance import inputs_used, reliance_table

    examples = read_table(examples_path)
    rows = examples[examples["split"].isin(list(generate_cfg["splits"]))].reset_index(drop=True)
    placeholder = fame_cfg["prompt"]["video_placeholder"]
    uses_video = bool(rows["prompt"].str.contains(placeholder, regex=False).any())
    videos = load_videos(features_path, list(rows["sample_id"])) if uses_video else {}
    audios = load_audios(audio_path, rows, fame_cfg["prompt"]["audio_placeholder"])
    run = TrainedRun.load(llm_path, model_path, fame_cfg, max_length, videos, audios, features_path, threads)
    encoded = run.encode(rows, False)
    table = pd.DataFrame({
        "sample_id": rows["sample_id"], "prompt": rows["prompt"], "prediction": run.generate(rows, generate_cfg),
        "reference": rows["reference"], "split": rows["split"], "emotion": rows["emotion"],
        "n_prompt_tokens": [len(e.input_ids) for e in encoded],
    })
    made_by = run_card_summary(llm_path, model_path)
    write_table(table, out, STAGE, {"experiment": experiment, "generate": dict(generate_cfg), **made_by})
    log.info("%s: %d predictions (%s)", experiment, len(table), ", ".join(generate_cfg["splits"]))

    modalities = Modalities.from_experiment(read_metadata(examples_path)["settings"]["modalities"])
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

