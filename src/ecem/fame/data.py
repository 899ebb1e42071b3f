"""Tokenisation and batching: prompt + answer → ids with the answer-only loss mask.

The prompt's single video placeholder becomes one placeholder id per video token (T+N of them),
and its audio placeholder, when the experiment hears audio, one id per audio token (A), so
`FameModel.splice` can write the projected tokens in place. Labels are -100 everywhere except
the answer tokens and the end-of-sequence (chat models: end-of-turn) token that closes it: the
loss covers the answer only (`ecem.chat.PromptFormat` says which tokens those are).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ecem.chat import PromptFormat
from ecem.fame.model import IGNORE
from ecem.tokens import TokenStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    sample_id: str
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt positions; empty when encoded for generation
    n_video: int
    n_audio: int = 0
    answer_cut: int = 0  # answer tokens dropped to fit max_length


class PromptTooLong(ValueError):
    """A prompt that alone does not fit `max_length`: its sample cannot train (nothing of the
    answer would be left to learn from)."""


@dataclass(frozen=True)
class Slot:
    """A modality's placeholder: its text in the prompt, its token id, and how many tokens it
    stands for in this sample (0: the prompt must not contain it)."""

    text: str
    token_id: int
    count: int


def _expand(ids: list[int], slot: Slot, sample_id: str, prompt: str) -> list[int]:
    n_slots = prompt.count(slot.text)
    if n_slots > 1 or (n_slots == 0) != (slot.count == 0):
        raise ValueError(f"{sample_id}: prompt has {n_slots} {slot.text} placeholders for {slot.count} tokens")
    if not n_slots:
        return ids
    at = ids.index(slot.token_id)
    return ids[:at] + [slot.token_id] * slot.count + ids[at + 1:]


def encode(tokenizer, sample_id: str, prompt: str, answer: str | None, fmt: PromptFormat,
           placeholder: str, placeholder_id: int, n_video: int, max_length: int,
           audio: Slot | None = None) -> Encoded:
    """Ids for the user message `prompt` rendered by `fmt` (+ `answer` and its end token when
    given). The answer is cut to fit `max_length` (`answer_cut` says by how many tokens); a
    prompt that alone does not fit raises PromptTooLong naming the sample. `audio`, when the
    experiment hears audio, is its placeholder and count."""
    ids = _expand(fmt.prompt_ids(tokenizer, prompt), Slot(placeholder, placeholder_id, n_video), sample_id, prompt)
    n_audio = 0
    if audio is not None:
        ids, n_audio = _expand(ids, audio, sample_id, prompt), audio.count
    if len(ids) >= max_length:
        raise PromptTooLong(f"{sample_id}: prompt is {len(ids)} tokens (with {n_video} video and {n_audio} audio "
                         f"tokens), max_length is {max_length}")
    if answer is None:
        return Encoded(sample_id, ids, [], n_video, n_audio)
    full = fmt.answer_ids(tokenizer, prompt, answer)
    answer_ids = full[: max_length - len(ids)]
    return Encoded(sample_id, ids + answer_ids, [IGNORE] * len(ids) + answer_ids, n_video, n_audio,
                   len(full) - len(answer_ids))


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


def _stack(batch: Sequence[Encoded], tokens: Mapping[str, np.ndarray] | None, modality: str) -> torch.Tensor | None:
    """The batch's `modality` tokens (its samples' in order) as one float32 (M, D) tensor."""
    count = (lambda e: e.n_video) if modality == "video" else (lambda e: e.n_audio)
    users = [e for e in batch if count(e)]
    if tokens is None or not users:
        return None
    parts = [tokens[e.sample_id] for e in users]
    for e, part in zip(users, parts, strict=True):
        if part.shape[0] != count(e):
            raise ValueError(f"{e.sample_id}: {part.shape[0]} {modality} tokens, encoded for {count(e)}")
    return torch.from_numpy(np.concatenate(parts).astype(np.float32))


def collate(batch: Sequence[Encoded], videos: Mapping[str, np.ndarray] | None, pad_id: int,
            left_pad: bool = False, audios: Mapping[str, np.ndarray] | None = None) -> dict[str, torch.Tensor | None]:
    """Pad a batch (right for training, left for generation) and stack its video (and audio)
    tokens in order. The `audio` key is present only when `audios` is given."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        sl = slice(width - n, width) if left_pad else slice(0, n)
        ids[i, sl] = torch.tensor(e.input_ids)
        mask[i, sl] = 1
        if e.labels:
            labels[i, sl] = torch.tensor(e.labels)
    out = {"input_ids": ids, "attention_mask": mask, "labels": labels, "video": _stack(batch, videos, "video")}
    if audios is not None:
        out["audio"] = _stack(batch, audios, "audio")
    return out


def to_device(batch: Mapping[str, torch.Tensor | None], device: torch.device) -> dict[str, torch.Tensor | None]:
    """A collated batch with its tensors on `device` (absent modalities stay None)."""
    return {k: (v.to(device) if v is not None else None) for k, v in batch.items()}
