"""Modality reliance: does a trained FAME-Net run use each of its inputs?

Following "Perceptual Score: What Data Modalities Does Your Model Perceive?" (Gat, Schwartz &
Schwing, NeurIPS 2021), a run is scored again with one input permuted across the evaluated
samples: every sample keeps everything of its own except that input, which comes from another
sample (a seeded *derangement*, so no sample keeps its own). A model that reads the input does
worse without its own; a model that ignores it does not notice. Several derangements per input
average out which partner each sample happened to get.

What is scored is the teacher-forced answer loss (mean negative log-likelihood per reference
answer token, `FameModel.forward`): cheap (one forward pass per sample and permutation, no
decoding), defined for every sample, and sensitive where generation metrics on a small test set
are not. The inputs are those an experiment uses (`inputs_used`): the video tokens V, the audio
tokens A (permuted among the samples that have audio), the facial-emotion sentence E, the
utterance text T (the speaker stays: only the words move) and the context turns C. Prompts with a
swapped field are rebuilt by the one prompt builder (`ecem.fame.prompt.build_prompt`); swapped
tokens are read from the partner's row of the same token store.

Optionally (`reliance.generate`) each input's first derangement is also decoded with the run's
own generation settings, so the evaluate stage can score what the model *says* without it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ecem.fame.prompt import build_prompt, sample_fields
from ecem.modalities import Modalities

log = logging.getLogger(__name__)

#: Every input a run can be checked for, in table order, with the letter of Table 3.
INPUTS: dict[str, str] = {"video": "V", "audio": "A", "face": "E", "text": "T", "context": "C"}
#: Inputs carried by a token store (swapped by sample id) vs. by a prompt field (prompt rebuilt).
TOKEN_INPUTS = ("video", "audio")
PROMPT_FIELDS = {"face": "face_emotion", "text": "text", "context": "context"}
TRUE = -1  # the `permutation` of rows scored with every input the sample's own
COLUMNS = ["sample_id", "input", "permutation", "source_sample_id", "changed", "nll", "n_tokens",
           "prediction"]


def inputs_used(modalities: Modalities) -> list[str]:
    """The inputs an experiment shows the model (the ones whose permutation can matter)."""
    used = {"video": modalities.video, "audio": modalities.audio, "face": modalities.face,
            "text": modalities.text, "context": modalities.text and modalities.context_turns > 0}
    return [name for name in INPUTS if used[name]]


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of range(n) with no fixed point, uniform over all derangements (rejection:
    about e ≈ 2.7 draws on average). Needs n ≥ 2."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {n}")
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def derangements(n: int, count: int, seed: int, input_name: str) -> list[np.ndarray]:
    """`count` derangements of range(n) for one input, seeded by (seed, input): the same
    partners whatever other inputs are checked, and different ones for different inputs."""
    rng = np.random.default_rng([int(seed), list(INPUTS).index(input_name)])
    return [derangement(n, rng) for _ in range(count)]


class SwappedTokens(Mapping[str, np.ndarray]):
    """A token store seen through a partner map: `swapped[s]` is the tokens of `source[s]`
    (samples without a partner keep their own)."""

    def __init__(self, tokens: Mapping[str, np.ndarray], source: Mapping[str, str]):
        self._tokens, self._source = tokens, source

    def __getitem__(self, sample_id: str) -> np.ndarray:
        return self._tokens[self._source.get(sample_id, sample_id)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._tokens.shape  # type: ignore[attr-defined]


def eligible(examples: pd.DataFrame, input_name: str) -> pd.DataFrame:
    """The samples an input can be permuted among: all of them, except for audio, which only
    the samples with audio tokens have."""
    if input_name == "audio":
        return examples[examples["has_audio"].astype(bool)]
    return examples


def swapped_examples(examples: pd.DataFrame, input_name: str, partner: Mapping[str, str],
                     modalities: Modalities, prompt_cfg: Mapping[str, Any]) -> tuple[pd.DataFrame, list[bool]]:
    """`examples` with `input_name` taken from each sample's partner, and whether it changed
    (a partner may carry the same value, e.g. the same facial emotion). Token inputs keep the
    prompt (the tokens are swapped at batching, `SwappedTokens`); prompt inputs get the prompt
    rebuilt with the partner's field."""
    rows = examples.set_index("sample_id", drop=False)
    if input_name in TOKEN_INPUTS:
        return examples, [True] * len(examples)
    field = PROMPT_FIELDS[input_name]
    prompts, changed = [], []
    for row in examples.to_dict("records"):
        sample = sample_fields(row)
        source = sample_fields(rows.loc[partner[row["sample_id"]]].to_dict())
        changed.append(source[field] != sample[field])
        prompts.append(build_prompt({**sample, field: source[field]}, modalities, prompt_cfg))
    return examples.assign(prompt=prompts), changed


def plan(examples: pd.DataFrame, modalities: Modalities, count: int, seed: int) -> list[tuple[str, int, dict[str, str]]]:
    """Every (input, permutation index, {sample: partner}) to score, for the inputs the run uses
    (an input with fewer than two eligible samples cannot be permuted and is skipped, logged)."""
    out = []
    for name in inputs_used(modalities):
        ids = eligible(examples, name)["sample_id"].tolist()
        if len(ids) < 2:
            log.warning("%s: %d sample(s) have it, too few to permute; not checked", name, len(ids))
            continue
        for k, perm in enumerate(derangements(len(ids), count, seed, name)):
            out.append((name, k, {ids[i]: ids[int(j)] for i, j in enumerate(perm)}))
    return out


def reliance_table(score: Any, examples: pd.DataFrame, modalities: Modalities, prompt_cfg: Mapping[str, Any],
                   cfg: Mapping[str, Any], decode: Any | None = None) -> pd.DataFrame:
    """Per sample: the answer loss with its own inputs (permutation −1) and with each used input
    permuted (`cfg['permutations']` derangements, seed `cfg['seed']`).

    `score(examples, video_source, audio_source)` → per-sample (nll sum, answer tokens) of the
    examples' prompts with the given partner maps for the token inputs; `decode(...)`, same
    arguments, → predictions (called for each input's first derangement when given). Both are
    the trained run's own (`ecem.fame.trained.TrainedRun`); this function only decides what to swap."""
    own: dict[str, str] = {}
    true_nll, true_tokens = score(examples, own, own)
    frames = [_rows(examples, "none", TRUE, own, [False] * len(examples), true_nll, true_tokens)]
    true_of = dict(zip(examples["sample_id"], zip(true_nll, true_tokens, strict=True), strict=True))
    for name, k, partner in plan(examples, modalities, int(cfg["permutations"]), int(cfg["seed"])):
        subset = examples[examples["sample_id"].isin(partner)]
        swapped, changed = swapped_examples(subset, name, partner, modalities, prompt_cfg)
        sources = (partner if name == "video" else own, partner if name == "audio" else own)
        # a partner with the same value (e.g. the same facial emotion) leaves the prompt as it
        # was: its loss is the true one, so only the changed samples go through the model
        moved = swapped[np.asarray(changed, dtype=bool)]
        scored = dict(zip(moved["sample_id"], zip(*score(moved, *sources), strict=True), strict=True)) if len(moved) else {}
        nll, n_tokens = zip(*(scored.get(s, true_of[s]) for s in swapped["sample_id"]), strict=True)
        predictions = decode(swapped, *sources) if decode is not None and k == 0 else None
        frames.append(_rows(swapped, name, k, partner, changed, nll, n_tokens, predictions))
        log.info("%s permutation %d: mean answer loss %.4f on %d samples (%d changed)", name, k,
                 float(np.sum(nll) / max(np.sum(n_tokens), 1)), len(swapped), len(moved))
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def _rows(examples: pd.DataFrame, name: str, k: int, partner: Mapping[str, str], changed: Sequence[bool],
          nll: Sequence[float], n_tokens: Sequence[int], predictions: Sequence[str] | None = None) -> pd.DataFrame:
    ids = examples["sample_id"].tolist()
    n_tok = np.asarray(n_tokens, dtype=np.int64)
    return pd.DataFrame({
        "sample_id": ids, "input": name, "permutation": k,
        "source_sample_id": [partner.get(s, s) for s in ids], "changed": list(changed),
        "nll": np.asarray(nll, dtype=np.float64) / np.maximum(n_tok, 1), "n_tokens": n_tok,
        "prediction": list(predictions) if predictions is not None else [None] * len(ids),
    })
