"""Emotion label sets: MELD's names, and how each expression model's labels map onto them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecem.meld import EMOTIONS

#: The fixed order of `emotion_probs` in faces.parquet and of `distribution` in the summary.
MELD_LABELS: tuple[str, ...] = EMOTIONS

#: Model label names (lower-cased) → MELD emotion. AffectNet's `contempt` has no MELD
#: counterpart; it is folded into `disgust`, the closest MELD emotion.
_TO_MELD = {
    "angry": "anger", "anger": "anger",
    "disgust": "disgust", "contempt": "disgust",
    "fear": "fear",
    "happy": "joy", "happiness": "joy", "joy": "joy",
    "neutral": "neutral",
    "sad": "sadness", "sadness": "sadness",
    "surprise": "surprise",
}

#: Native label orders of the supported expression checkpoints.
FER2013_LABELS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
DDAMFN_LABEL_SETS: dict[str, tuple[str, ...]] = {
    # RAF-DB's class indices 0..6 (the DDAMFN RAF-DB checkpoints)
    "rafdb": ("Surprise", "Fear", "Disgust", "Happy", "Sad", "Angry", "Neutral"),
    # AffectNet's class indices (the DDAMFN AffectNet-7 / -8 checkpoints)
    "affectnet7": ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Angry"),
    "affectnet8": ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Angry", "Contempt"),
}


def meld_name(label: str) -> str:
    """The MELD emotion a model label stands for."""
    try:
        return _TO_MELD[label.lower()]
    except KeyError:
        raise ValueError(f"expression label {label!r} has no MELD emotion "
                         f"(known: {', '.join(sorted(_TO_MELD))})") from None


def label_map(model_labels: Sequence[str]) -> dict[str, str]:
    """`{model label: MELD emotion}` for a model's label list (recorded in the artifact)."""
    return {label: meld_name(label) for label in model_labels}


def to_meld(probs: np.ndarray, model_labels: Sequence[str]) -> np.ndarray:
    """Re-index probabilities `(N, len(model_labels))` into MELD_LABELS order `(N, 7)`, summing
    the model labels that map onto the same MELD emotion."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != len(model_labels):
        raise ValueError(f"probabilities of shape {probs.shape} do not match {len(model_labels)} labels")
    out = np.zeros((probs.shape[0], len(MELD_LABELS)), dtype=np.float32)
    for j, label in enumerate(model_labels):
        out[:, MELD_LABELS.index(meld_name(label))] += probs[:, j]
    return out
