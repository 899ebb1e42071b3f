"""WER after the pipeline's one text normalisation (ecem.text.normalize_text)."""

from __future__ import annotations

import pytest

from ecem.transcribe.wer import corpus_wer, wer, word_errors, words


def test_normalisation_makes_formatting_free():
    # curly apostrophe, mojibake, case and punctuation do not count as errors
    assert wer("I don’t eat meat anymore.", "i dont eat meat anymore") == 0.0
    assert wer("I donâ€™t eat meat anymore.", "I don't eat meat, anymore!") == 0.0
    assert wer("Okay, everybody, dinner is finally ready.", "Okay everybody dinner is finally ready") == 0.0


def test_counts_substitutions_deletions_insertions():
    assert word_errors("a b c d", "a x c d") == (1, 4)  # substitution
    assert word_errors("a b c d", "a c d") == (1, 4)  # deletion
    assert word_errors("a b c d", "a b c d e f") == (2, 4)  # insertions
    assert wer("No, Joey, you did!", "No, jolly, you did.") == pytest.approx(0.25)
    assert wer("There is lasagna and a salad.", "Merry Blender and a salad.") == pytest.approx(3 / 6)


def test_contraction_expansion_is_an_error():
    # "I've" vs "I have": different words after normalisation ("ive" vs "i have")
    spoken = "Finally, I have been starving since noon."
    assert wer("Finally! I’ve been starving since noon.", spoken) == pytest.approx(2 / 6)


def test_empty_texts():
    assert words(None) == [] and words("  ...  ") == []
    assert wer("", "") == 0.0
    assert wer("", "hello there") == 2.0  # hallucination on a wordless reference is not perfect
    assert wer("hello there", "") == 1.0


def test_corpus_wer_pools_words():
    assert corpus_wer(["a b c d", "e f"], ["a b c d", "x"]) == pytest.approx(2 / 6)
    with pytest.raises(ValueError):
        corpus_wer(["a"], [])
