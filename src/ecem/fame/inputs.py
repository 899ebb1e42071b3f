"""What a FAME-Net job reads, and the model it builds on it: one loader for training, generation
and the reliance check, so they see the same examples, tokens and model.

Which inputs a run uses follows from its experiment's modalities, recorded in the examples
file's metadata by rule fame_examples (`settings.modalities`): video tokens when it sees video,
audio tokens for the samples with audio (`has_audio`) when it hears.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ecem.artifacts import read_metadata, read_table
from ecem.devices import resolve_device
from ecem.fame.data import Encoded
from ecem.fame.model import FameModel, ensure_placeholder, load_llm, resolve_dtype
from ecem.modalities import Modalities
from ecem.tokens import TokenStore

log = logging.getLogger(__name__)
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


def load_audios(audio_path: str | None, examples: pd.DataFrame, modalities: Modalities) -> TokenStore | None:
    """The audio tokens of the examples that have audio (`has_audio`), read lazily like the video
    tokens; None for an experiment without audio. An experiment with audio always gets a store
    (maybe empty: every sample `no_audio`), so its model always has the audio projector, in
    training and in generation alike."""
    if not modalities.audio:
        return None
    if audio_path is None:
        raise ValueError("the experiment hears audio but no audio features were given")
    ids = examples.loc[examples["has_audio"].astype(bool), "sample_id"].tolist()
    store = TokenStore(audio_path, ids)
    missing = sorted(set(ids) - set(store))
    if missing:
        raise KeyError(f"{audio_path}: no audio tokens for {missing[:5]}")
    return store


def job_device() -> torch.device:
    """CUDA when there is one (this process's GPU under `accelerate launch`), else the CPU."""
    device = resolve_device("auto")
    return torch.device(device, int(os.environ.get("LOCAL_RANK", "0"))) if device == "cuda" else torch.device(device)


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


@dataclass
class FameInputs:
    """A run's examples of the splits a job uses, with their video and audio tokens.

    `experiment` is the experiment's config entry (its modalities); `splits` maps every example
    of the file, of any split, to its split (training checks its set against it)."""

    examples: pd.DataFrame
    experiment: Mapping[str, Any]
    splits: Mapping[str, str]
    videos: Mapping[str, np.ndarray]
    audios: Mapping[str, np.ndarray] | None
    features_path: str | None = None

    @classmethod
    def load(cls, examples_path: str, features_path: str | None, audio_path: str | None,
             splits: Iterable[str]) -> FameInputs:
        table = read_table(examples_path)
        experiment = read_metadata(examples_path)["settings"]["modalities"]
        modalities = Modalities.from_experiment(experiment)
        rows = table[table["split"].isin(list(splits))].reset_index(drop=True)
        videos = load_videos(features_path, list(rows["sample_id"])) if modalities.video else {}
        audios = load_audios(audio_path, rows, modalities)
        return cls(rows, experiment, dict(zip(table["sample_id"], table["split"], strict=True)), videos, audios,
                   features_path)

    @property
    def modalities(self) -> Modalities:
        return Modalities.from_experiment(self.experiment)

    def split(self, name: str) -> pd.DataFrame:
        return self.examples[self.examples["split"] == name]

    @property
    def vision_dim(self) -> int:
        """D of the video tokens; a model without video examples still needs it for the
        projector's shape (then from the feature file, or 1 without one)."""
        if self.videos:
            return int(next(iter(self.videos.values())).shape[1])
        if self.features_path:
            store = TokenStore(self.features_path)
            if len(store):
                return store.shape[1]
        return 1

    def build_model(self, llm_path: str, fame_cfg: Mapping[str, Any], device: torch.device,
                    audio_dim: int | None = None) -> tuple[FameModel, Any, list[str]]:
        """`build_model` for these inputs; `audio_dim`: the audio tokens' width when the audio
        store cannot tell (an audio run given no audio)."""
        if audio_dim is None and self.audios is not None:
            audio_dim = self.audios.shape[1]  # type: ignore[attr-defined]
        return build_model(llm_path, fame_cfg, self.vision_dim, device, audio_dim)


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


@dataclass
class ProjectorScale:
    """A projector's output scale beside the LLM's embeddings: what matching it set before
    training (`at_init`; empty when it was not matched) and the training tokens it is measured
    on (`sample`; None when no training sample has the modality)."""

    modality: str
    sample: np.ndarray | None
    at_init: dict[str, Any]

    def after_training(self, model: FameModel) -> dict[str, Any]:
        """The run card's entry: `at_init` and the scale the trained projector gives `sample`."""
        return {**self.at_init, "after_training": model.projection_norms(self.sample, modality=self.modality)
                if self.sample is not None else None}


def match_scales(model: FameModel, inputs: FameInputs, train_set: Sequence[Encoded],
                 projector_init: str | None) -> tuple[ProjectorScale, ProjectorScale]:
    """Scale the new projectors' outputs to the LLM's embeddings on training tokens
    (`FameModel.match_embedding_scale`): the video projector unless a checkpoint initialised it,
    the audio projector always (no LLaVA checkpoint has one). → (video, audio) scales."""
    video = norm_sample(inputs.videos, [e.sample_id for e in train_set if e.n_video])
    audio = (norm_sample(inputs.audios, [e.sample_id for e in train_set if e.n_audio])
             if inputs.audios is not None else None)
    video_scale = model.match_embedding_scale(video) if video is not None and projector_init is None else {}
    audio_scale = model.match_embedding_scale(audio, modality="audio") if audio is not None else {}
    return ProjectorScale("video", video, video_scale), ProjectorScale("audio", audio, audio_scale)
