"""Word error rate between two texts after the pipeline's one text normalisation.

Both sides go through `ecem.text.normalize_text` (mojibake repaired, lower case, apostrophes
dropped, punctuation → space), so "I don’t know." and "i dont know" are the same words and
only real word differences count. WER = (substitutions + deletions + insertions) / number of
reference words, from a word-level Levenshtein alignment. With an empty reference the WER is 0
when the hypothesis is empty too, else the number of inserted words (as if the reference had
one word), so a hallucinated transcript of a wordless utterance never scores as perfect.
"""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein

from ecem.text import normalize_text


def words(text: str | None) -> list[str]:
    """The normalised words of `text` (empty list for None or empty text)."""
    norm = normalize_text(text or "")
    return norm.split() if norm else []


def word_errors(reference: str | None, hypothesis: str | None) -> tuple[int, int]:
    """(edit operations, reference word count) after normalisation."""
    ref, hyp = words(reference), words(hypothesis)
    return Levenshtein.distance(ref, hyp), len(ref)


def wer(reference: str | None, hypothesis: str | None) -> float:
    """Word error rate of `hypothesis` against `reference` (both normalised)."""
    errors, n_ref = word_errors(reference, hypothesis)
    return errors / max(n_ref, 1)


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    """Pooled WER over many pairs: total edits / total reference words."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references vs {len(hypotheses)} hypotheses")
    errors = n_ref = 0
    for ref, hyp in zip(references, hypotheses):
        e, n = word_errors(ref, hyp)
        errors, n_ref = errors + e, n_ref + n
    return errors / max(n_ref, 1)
