"""METEOR 1.5's corpus score from per-segment statistics, in NumPy.

Why: the bootstrap CI of METEOR resamples segments and recomputes the corpus score for every
resample. Sending each resample to the Java process (the jar's EVAL command) costs a round trip
of thousands of statistics lines per resample, 200 times per run. The corpus score is a closed
formula of the *summed* per-segment statistics, so this module sums the resampled statistics
and applies the formula, vectorised over resamples: `corpus_meteor(stats[idx])` with an index
matrix `idx` (resamples, n) gives one score per resample with no Java call. The per-segment
statistics themselves still come from the jar (`MeteorJar.statistics`, its SCORE command);
tests/unit/test_meteor_stats.py checks the result against the jar's EVAL corpus score.

What the jar shipped by pycocoevalcap 1.2 (meteor-1.5.jar, run with ``-l en -norm``) does, as
read from METEOR 1.5's source (`edu.cmu.meteor.scorer.MeteorStats`, `MeteorScorer`) and checked
against the jar's bytecode and behaviour:

- A statistics line has 23 numbers (Java doubles, printed like ``7.0``)::

      0  test length                   1  reference length
      2  test function words           3  reference function words
      4 + 4*s .. 7 + 4*s for stage s in (exact, stem, synonym, paraphrase):
         test content matches, reference content matches,
         test function matches, reference function matches
      20 chunks                        21 test word matches   22 reference word matches

- EVAL sums the lines field by field (``MeteorStats.addStats``) with one exception: a segment
  whose every test and reference word is matched (summed stage matches == length, on both
  sides) in a single chunk adds 0 chunks instead of 1, so perfect segments carry no
  fragmentation into the corpus score.
- The corpus score (``MeteorScorer.computeMetrics`` on the sums)::

      P = sum_s w_s (delta * tc_s + (1 - delta) * tf_s) / (delta * (tlen - tfun) + (1 - delta) * tfun)
      R = the same on the reference side
      fmean = 1 / ((1 - alpha) / P + alpha / R)
      frag = 0 if (all words matched on both sides and chunks == 1)
             else chunks / ((test word matches + reference word matches) / 2)
      score = fmean * (1 - gamma * frag ** beta);  NaN (e.g. 0/0) -> 0;  then max(score, 0)

  The jar prints it with Java's `Double.toString` (shortest round-trip form), so it is not
  rounded: ours agrees to float rounding (~1e-16).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Number of values in one METEOR 1.5 statistics line.
STATS_LENGTH = 23
#: Matching stages, in the order of the statistics line (and of MODULE_WEIGHTS).
STAGES = ("exact", "stem", "synonym", "paraphrase")

# Parameters of METEOR 1.5 for English, default task "rank" (what `-l en -norm` uses; -norm only
# changes text normalisation). From Constants.PARAM_RANK / WEIGHT_RANK [English] in METEOR 1.5's
# source, and confirmed by the jar itself: `java -jar meteor-1.5.jar test ref -l en -norm`
# prints "Eval ID: meteor-1.5-wo-en-norm-0.85_0.2_0.6_0.75-ex_st_sy_pa-1.0_0.6_0.8_0.6",
# "Weights: 1.0 0.6 0.8 0.6", "Parameters: 0.85 0.2 0.6 0.75" (alpha beta gamma delta).
ALPHA = 0.85  # precision/recall balance of the F-mean (weight of recall)
BETA = 0.2  # exponent of the fragmentation
GAMMA = 0.6  # maximum fragmentation penalty
DELTA = 0.75  # weight of content words against function words (1 - DELTA)
#: Weights of matches found by the exact, stem, synonym and paraphrase stages.
MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)

# Column layout of a statistics line.
TEST_LEN, REF_LEN, TEST_FUNC, REF_FUNC = 0, 1, 2, 3
TEST_CONTENT = slice(4, 20, 4)  # per-stage matches, stages in STAGES order
REF_CONTENT = slice(5, 20, 4)
TEST_FUNC_MATCHES = slice(6, 20, 4)
REF_FUNC_MATCHES = slice(7, 20, 4)
CHUNKS, TEST_WORD_MATCHES, REF_WORD_MATCHES = 20, 21, 22


def parse_stats(lines: Sequence[str]) -> np.ndarray:
    """(n, 23) float array of the jar's statistics lines (its SCORE command's output)."""
    rows = [line.split() for line in lines]
    for i, row in enumerate(rows):
        if len(row) != STATS_LENGTH:
            raise ValueError(
                f"METEOR statistics line {i} has {len(row)} values, expected {STATS_LENGTH}: "
                f"{lines[i]!r}"
            )
    return np.array(rows, dtype=float).reshape(len(rows), STATS_LENGTH)


def _all_matched_in_one_chunk(stats: np.ndarray, chunks: np.ndarray) -> np.ndarray:
    """METEOR's "test = reference" case: every test and every reference word matched (summed
    stage matches == length on both sides) and in one chunk."""
    test_matches = stats[..., TEST_CONTENT].sum(axis=-1) + stats[..., TEST_FUNC_MATCHES].sum(axis=-1)
    ref_matches = stats[..., REF_CONTENT].sum(axis=-1) + stats[..., REF_FUNC_MATCHES].sum(axis=-1)
    return (test_matches == stats[..., TEST_LEN]) & (ref_matches == stats[..., REF_LEN]) & (chunks == 1.0)


def _weighted(content: np.ndarray, function: np.ndarray) -> np.ndarray:
    """Matches weighted by stage (MODULE_WEIGHTS) and by content (DELTA) / function (1 - DELTA)."""
    weights = np.asarray(MODULE_WEIGHTS)
    return DELTA * (content @ weights) + (1.0 - DELTA) * (function @ weights)


def _weighted_length(length: np.ndarray, function_words: np.ndarray) -> np.ndarray:
    return DELTA * (length - function_words) + (1.0 - DELTA) * function_words


def corpus_meteor(stats: np.ndarray) -> np.ndarray:
    """Corpus METEOR of statistics of shape (..., n, 23) → (...): the jar's EVAL corpus score.

    Sums over the segment axis (-2) as EVAL does, then applies METEOR's formula; every leading
    axis is kept, so `corpus_meteor(stats[idx])` with `idx` (resamples, n) gives (resamples,).
    """
    stats = np.asarray(stats, dtype=float)
    if stats.ndim < 2 or stats.shape[-1] != STATS_LENGTH:
        raise ValueError(f"expected statistics of shape (..., n, {STATS_LENGTH}), got {stats.shape}")
    # EVAL's addStats: a segment matched whole in one chunk adds no chunk to the sum
    segment_chunks = stats[..., CHUNKS]
    perfect = _all_matched_in_one_chunk(stats, segment_chunks)
    chunks = np.where(perfect, 0.0, segment_chunks).sum(axis=-1)
    total = stats.sum(axis=-2)

    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 → NaN → score 0, as in Java
        precision = _weighted(total[..., TEST_CONTENT], total[..., TEST_FUNC_MATCHES]) / _weighted_length(
            total[..., TEST_LEN], total[..., TEST_FUNC]
        )
        recall = _weighted(total[..., REF_CONTENT], total[..., REF_FUNC_MATCHES]) / _weighted_length(
            total[..., REF_LEN], total[..., REF_FUNC]
        )
        fmean = 1.0 / ((1.0 - ALPHA) / precision + ALPHA / recall)
        # computeMetrics checks the "test = reference" case again on the sums
        mean_word_matches = (total[..., TEST_WORD_MATCHES] + total[..., REF_WORD_MATCHES]) / 2.0
        frag = np.where(_all_matched_in_one_chunk(total, chunks), 0.0, chunks / mean_word_matches)
        score = fmean * (1.0 - GAMMA * np.power(frag, BETA))
    return np.maximum(np.where(np.isnan(score), 0.0, score), 0.0)
