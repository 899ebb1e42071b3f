"""Batched use of a trained model on spliced `inputs_embeds`: generation (greedy by default,
sampling configurable) and teacher-forced scoring of reference answers."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ecem.fame.data import Encoded, collate, to_device
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


def _length_batches(examples: Sequence[Encoded], batch_size: int) -> list[list[int]]:
    """Indices of `examples` in batches of prompts of one length (at most `batch_size` each); the
    callers put results back in input order.

    Why one length per batch: padding changes the numbers (a left-padded prompt's logits moved by
    up to 0.9 in bfloat16 on the demo's SmolLM2, enough to change a greedy token), while rows of
    one length compute exactly what each would alone (bit for bit on the CPU). So what the run
    says about a sample does not depend on which samples shared its batch, and `ecem explain` on
    one sample says the same. Prompts of a dataset share a handful of lengths; each length costs
    its own decoding steps."""
    groups: dict[int, list[int]] = {}
    for i, example in enumerate(examples):
        groups.setdefault(len(example.input_ids), []).append(i)
    return [group[start:start + batch_size] for _, group in sorted(groups.items())
            for start in range(0, len(group), batch_size)]


@torch.no_grad()
def score_answers(model: FameModel, tokenizer: Any, examples: Sequence[Encoded], videos: Mapping[str, np.ndarray],
                  batch_size: int, device: torch.device,
                  audios: Mapping[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per example (in order): the summed negative log-likelihood of its answer tokens given its
    prompt (teacher forcing), and the number of those tokens."""
    model.eval()
    nll, n_tokens = np.zeros(len(examples)), np.zeros(len(examples), dtype=np.int64)
    for idx in tqdm(_length_batches(examples, batch_size), desc="score", disable=None):
        batch = collate([examples[i] for i in idx], videos, tokenizer.pad_token_id, audios=audios)
        out = model(**to_device(batch, device))
        nll[idx] = out.nll.double().cpu().numpy()
        n_tokens[idx] = out.n_tokens.cpu().numpy()
    return nll, n_tokens


@torch.no_grad()
def generate(model: FameModel, tokenizer: Any, examples: Sequence[Encoded], videos: Mapping[str, np.ndarray],
             cfg: Mapping[str, Any], device: torch.device,
             audios: Mapping[str, np.ndarray] | None = None) -> list[str]:
    """One decoded explanation per example, in order. Batches are left-padded; examples are
    grouped by length so padding stays small, and the results put back in input order."""
    torch.manual_seed(int(cfg["seed"]))
    model.eval()
    kwargs = generation_kwargs(cfg, tokenizer)
    out: list[str | None] = [None] * len(examples)
    for idx in tqdm(_length_batches(examples, int(cfg["batch_size"])), desc="generate", disable=None):
        batch = to_device(collate([examples[i] for i in idx], videos, tokenizer.pad_token_id, left_pad=True,
                            audios=audios), device)
        new = model.generate(batch["input_ids"], batch["attention_mask"], batch["video"], batch.get("audio"),
                             **kwargs)
        for i, ids in zip(idx, new.tolist(), strict=True):
            out[i] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    return [o or "" for o in out]
