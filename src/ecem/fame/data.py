"""Tokenisation and batching: prompt + answer → ids with the answer-only loss mask.

The prompt's single video placeholder becomes one placeholder id per video token (T+N of them),
so `FameModel.splice` can write the projected tokens in place. Labels are -100 everywhere except
the answer tokens and the end-of-sequence (chat models: end-of-turn) token that closes it: the
loss covers the answer only (`ecem.chat.PromptFormat` says which tokens those are).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ecem.chat import PromptFormat

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    sample_id: str
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt positions; empty when encoded for generation
    n_video: int


def encode(tokenizer, sample_id: str, prompt: str, answer: str | None, fmt: PromptFormat,
           placeholder: str, placeholder_id: int, n_video: int, max_length: int) -> Encoded:
    """Ids for the user message `prompt` rendered by `fmt` (+ `answer` and its end token when
    given). The answer is cut to fit `max_length`; a prompt that alone does not fit is an error
    naming the sample."""
    n_slots = prompt.count(placeholder)
    if n_slots > 1 or (n_slots == 0 and n_video > 0) or (n_slots == 1 and n_video == 0):
        raise ValueError(f"{sample_id}: prompt has {n_slots} video placeholders for {n_video} video tokens")
    ids = fmt.prompt_ids(tokenizer, prompt)
    if n_slots:
        at = ids.index(placeholder_id)
        ids = ids[:at] + [placeholder_id] * n_video + ids[at + 1:]
    if len(ids) >= max_length:
        raise ValueError(f"{sample_id}: prompt is {len(ids)} tokens (with {n_video} video tokens), "
                         f"max_length is {max_length}")
    if answer is None:
        return Encoded(sample_id, ids, [], n_video)
    answer_ids = fmt.answer_ids(tokenizer, prompt, answer)[: max_length - len(ids)]
    return Encoded(sample_id, ids + answer_ids, [IGNORE] * len(ids) + answer_ids, n_video)


def collate(batch: Sequence[Encoded], videos: Mapping[str, np.ndarray] | None, pad_id: int,
            left_pad: bool = False) -> dict[str, torch.Tensor | None]:
    """Pad a batch (right for training, left for generation) and stack its video tokens in order."""
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
    video = None
    parts = [videos[e.sample_id] for e in batch if e.n_video] if videos is not None else []
    if parts:
        for e, part in zip([e for e in batch if e.n_video], parts, strict=True):
            if part.shape[0] != e.n_video:
                raise ValueError(f"{e.sample_id}: {part.shape[0]} video tokens, encoded for {e.n_video}")
        video = torch.from_numpy(np.concatenate(parts).astype(np.float32))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "video": video}
