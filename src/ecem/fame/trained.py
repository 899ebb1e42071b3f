"""A trained FAME-Net run put to use: generation, the reliance check's scoring and `ecem explain`
go through :class:`TrainedRun`, so they encode and decode alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ecem.fame.data import Encoded, encode_table
from ecem.fame.inputs import FameInputs, job_device
from ecem.fame.model import FameModel


@dataclass
class TrainedRun:
    """A trained run ready to use: the model with its trained weights on this job's device, the
    tokenizer, and the video and audio tokens of the samples it is used on."""

    model: FameModel
    tokenizer: Any
    videos: Mapping[str, np.ndarray]
    audios: Mapping[str, np.ndarray] | None
    device: torch.device
    prompt_cfg: Mapping[str, Any]
    max_length: int

    @classmethod
    def load(cls, inputs: FameInputs, llm_path: str, model_path: str, fame_cfg: Mapping[str, Any], max_length: int,
             threads: int = 1, device: str | None = None, audio_dim: int | None = None) -> TrainedRun:
        """`device`: default the job's (CUDA when there is one); `audio_dim`: the audio tokens'
        width when `inputs` cannot tell (an audio run given no audio)."""
        torch.set_num_threads(max(1, int(threads)))
        device = torch.device(device) if device is not None else job_device()
        model, tokenizer, _ = inputs.build_model(llm_path, fame_cfg, device, audio_dim)
        model.load_trainable(model_path)
        model.to(device)
        return cls(model, tokenizer, inputs.videos, inputs.audios, device, fame_cfg["prompt"], int(max_length))

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
                 audio_source: Mapping[str, str] | None = None,
                 encoded: list[Encoded] | None = None) -> list[str]:
        """One explanation per example, decoded with `generate_cfg` (`ecem.fame.generate`);
        `encoded`: the examples' prompts as :meth:`encode` gives them, when the caller has them."""
        from ecem.fame.generate import generate

        encoded = self.encode(examples, False) if encoded is None else encoded
        videos, audios = self.tokens(video_source, audio_source)
        return generate(self.model, self.tokenizer, encoded, videos, generate_cfg, self.device, audios) if encoded else []

    def score(self, examples: pd.DataFrame, batch_size: int, video_source: Mapping[str, str] | None = None,
              audio_source: Mapping[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per example: the summed NLL of its reference answer's tokens and their number."""
        from ecem.fame.generate import score_answers

        videos, audios = self.tokens(video_source, audio_source)
        return score_answers(self.model, self.tokenizer, self.encode(examples, True), videos, batch_size, self.device,
                             audios)
