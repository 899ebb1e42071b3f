"""Batched generation from spliced `inputs_embeds`: greedy by default, sampling configurable."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ecem.fame.data import Encoded, collate
from ecem.fame.model import FameModel

log = logging.getLogger(__name__)


def generation_kwargs(cfg: Mapping[str, Any], tokenizer: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_new_tokens": int(cfg["max_new_tokens"]), "do_sample": bool(cfg["do_sample"]),
        "num_beams": int(cfg["num_beams"]), "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if cfg["do_sample"]:
        kwargs.update(temperature=float(cfg["temperature"]), top_p=float(cfg["top_p"]))
    else:  # keep the model's generation_config from adding sampling knobs to greedy decoding
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return kwargs


@torch.no_grad()
def generate(model: FameModel, tokenizer: Any, examples: Sequence[Encoded], videos: Mapping[str, np.ndarray],
             cfg: Mapping[str, Any], device: torch.device,
             audios: Mapping[str, np.ndarray] | None = None) -> list[str]:
    """One decoded explanation per example, in order. Batches are left-padded; examples are
    grouped by length so padding stays small, and the results put back in input order."""
    torch.manual_seed(int(cfg["seed"]))
    model.eval()
    kwargs = generation_kwargs(cfg, tokenizer)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    out: list[str | None] = [None] * len(examples)
    bs = int(cfg["batch_size"])
    for start in tqdm(range(0, len(order), bs), desc="generate", disable=None):
        idx = order[start:start + bs]
        batch = collate([examples[i] for i in idx], videos, tokenizer.pad_token_id, left_pad=True, audios=audios)
        video = batch["video"].to(device) if batch["video"] is not None else None
        audio = batch.get("audio")
        new = model.generate(batch["input_ids"].to(device), batch["attention_mask"].to(device), video,
                             audio.to(device) if audio is not None else None, **kwargs)
        for i, ids in zip(idx, new.tolist(), strict=True):
            out[i] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    return [o or "" for o in out]
