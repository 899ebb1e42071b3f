"""Text normalisation shared by annotation matching and ASR scoring (one definition of 'same').

MELD's text has curly quotes, mojibake and inconsistent punctuation; ASR output has its own
punctuation and casing. Both are compared after `normalize_text`: mojibake repaired, Unicode
NFKC, lower case, apostrophes dropped (so "don't" == "dont"), other punctuation → space,
whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz import fuzz

from ecem.meld import repair_text

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`´]")
_NON_WORD = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Canonical form for comparing utterance texts."""
    text = unicodedata.normalize("NFKC", repair_text(text or "")).lower()
    text = _APOSTROPHES.sub("", text)
    text = _NON_WORD.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def text_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two texts after normalisation (normalised Levenshtein ratio)."""
    na, nb = normalize_text(a), normalize_text(b)
    if not na and not nb:
        return 1.0
    return fuzz.ratio(na, nb) / 100.0
