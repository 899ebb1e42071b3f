"""Baselines scored in the same tables as FAME-Net, writing the same `predictions.parquet`.

- `template`: a fixed sentence built from the target's speaker, emotion and utterance.
- `retrieval`: the cause of the most similar *training* sample (cosine of sentence embeddings of
  "emotion: utterance"), never from the sample's own dialogue, optionally only among training
  samples with the same emotion; the retrieved speaker's name is replaced by the target speaker's.
- `zero_shot`: zero-shot prompting of a transformers causal LM (text only): the demo runs it with
  the bundled SmolLM2-135M-Instruct; GPU users name a hub id (e.g. Vicuna-7B).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ecem.chat import PromptFormat
from ecem.evaluate.metrics import resolve_model

log = logging.getLogger(__name__)

KINDS = ("template", "retrieval", "zero_shot")
EMOTION_ADJECTIVES = {
    "anger": "angry",
    "disgust": "disgusted",
    "fear": "scared",
    "joy": "happy",
    "neutral": "calm",
    "sadness": "sad",
    "surprise": "surprised",
}
PROMPT = "Explain why the emotion of this statement is {emotion} <{speaker}: {utterance}>"


def select_samples(annotations: pd.DataFrame, splits: list[str]) -> pd.DataFrame:
    """The samples of the evaluated splits, in a stable order."""
    rows = annotations[annotations["split"].isin(splits)]
    return rows.sort_values("sample_id").reset_index(drop=True)


def _fields(row: Mapping[str, Any]) -> dict[str, str]:
    emotion = str(row["emotion"])
    return {
        "speaker": str(row["speaker"]),
        "emotion": emotion,
        "emotion_adj": EMOTION_ADJECTIVES.get(emotion, emotion),
        "utterance": str(row["utterance_text"]).strip(),
    }


def _frame(samples: pd.DataFrame, predictions: list[str], **extra: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": samples["sample_id"].tolist(),
            "prompt": [PROMPT.format(**_fields(r)) for r in samples.to_dict("records")],
            "prediction": predictions,
            "reference": samples["cause"].astype(str).tolist(),
            "split": samples["split"].tolist(),
            "emotion": samples["emotion"].tolist(),
            **extra,
        }
    )


def template_baseline(samples: pd.DataFrame, cfg: Mapping[str, Any]) -> pd.DataFrame:
    preds = [cfg["template"].format(**_fields(r)) for r in samples.to_dict("records")]
    return _frame(samples, preds)


def adapt_names(text: str, old: str, new: str) -> str:
    """Replace the whole-word name `old` (and its possessive) by `new`."""
    if not old or old == new:
        return text
    return re.sub(rf"\b{re.escape(old)}\b", new, text)


def _embed(texts: list[str], model_name: str | None, device: str) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model, _ = resolve_model(model_name)
    encoder = SentenceTransformer(model, device=device)
    return encoder.encode(texts, convert_to_numpy=True, normalize_embeddings=True, batch_size=32)


def retrieval_baseline(
    samples: pd.DataFrame, annotations: pd.DataFrame, cfg: Mapping[str, Any], device: str
) -> pd.DataFrame:
    pool = annotations[annotations["split"] == "train"].reset_index(drop=True)
    if pool.empty:
        raise ValueError("retrieval baseline: there are no training samples to retrieve from")

    def query(r: Mapping[str, Any]) -> str:
        return f"{r['emotion']}: {r['utterance_text']}"

    emb = _embed(
        [query(r) for r in samples.to_dict("records")] + [query(r) for r in pool.to_dict("records")],
        cfg["model"],
        device,
    )
    q, p = emb[: len(samples)], emb[len(samples) :]
    sims = q @ p.T
    preds, sources, scores = [], [], []
    for i, row in enumerate(samples.to_dict("records")):
        allowed = ~(
            (pool["meld_split"] == row["meld_split"]) & (pool["dialogue_id"] == row["dialogue_id"])
        ).to_numpy()
        if cfg["same_emotion"]:
            same = (pool["emotion"] == row["emotion"]).to_numpy() & allowed
            if same.any():
                allowed = same
        if not allowed.any():
            preds.append("")
            sources.append(None)
            scores.append(float("nan"))
            continue
        s = np.where(allowed, sims[i], -np.inf)
        j = int(np.argmax(s))
        src = pool.iloc[j]
        preds.append(adapt_names(str(src["cause"]), str(src["speaker"]), str(row["speaker"])))
        sources.append(str(src["sample_id"]))
        scores.append(float(s[j]))
    return _frame(samples, preds, retrieved_from=sources, retrieval_similarity=scores)


def zero_shot_baseline(samples: pd.DataFrame, cfg: Mapping[str, Any], device: str) -> pd.DataFrame:
    """Zero-shot prompting of a transformers causal LM with the sample's text (no video), greedy,
    the first line of the answer kept. `style: chat` renders the prompt as the user message of the
    tokenizer's chat template (with `system`), as FAME-Net's `fame.prompt.style` does. Prompts of
    similar length are decoded together (`batch_size`, left-padded)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fmt = PromptFormat(style=cfg["style"], user="", assistant="", system=cfg["system"])
    tok = AutoTokenizer.from_pretrained(cfg["model"])
    model = AutoModelForCausalLM.from_pretrained(cfg["model"]).eval().to(device)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    prompts = [fmt.prompt_ids(tok, cfg["prompt"].format(**_fields(r))) for r in samples.to_dict("records")]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    batch_size = int(cfg["batch_size"])
    preds: list[str] = [""] * len(prompts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(prompts[i]) for i in idx)
            ids = torch.tensor([[tok.pad_token_id] * (width - len(prompts[i])) + prompts[i] for i in idx], device=device)
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in idx], device=device)
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=cfg["max_new_tokens"],
                                 do_sample=False, temperature=None, top_p=None, top_k=None,
                                 pad_token_id=tok.pad_token_id)
            for i, row in zip(idx, out[:, width:].tolist(), strict=True):
                preds[i] = tok.decode(row, skip_special_tokens=True).strip().split("\n")[0]
    return _frame(samples, preds)


def run_baseline(
    name: str, cfg: Mapping[str, Any], annotations: pd.DataFrame, splits: list[str]
) -> pd.DataFrame:
    """Predictions of baseline `name` (its config `cfg`) for the samples of `splits`."""
    samples = select_samples(annotations, splits)
    kind = cfg["kind"]
    # The one default not in the schema: `device` absent = cpu. The demo's retrieval baseline
    # leaves it out, and a filled-in default would change the config its predictions record.
    device = str(cfg.get("device", "cpu"))
    log.info("baseline %s (%s): %d samples of splits %s", name, kind, len(samples), splits)
    if kind == "template":
        return template_baseline(samples, cfg)
    if kind == "retrieval":
        return retrieval_baseline(samples, annotations, cfg, device)
    if kind == "zero_shot":
        return zero_shot_baseline(samples, cfg, device)
    raise ValueError(f"baseline {name!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
