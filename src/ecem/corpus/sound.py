"""Non-speech sounds for the planted-cue corpus: each is audible, distinct from the others and from
speech, and carries nothing visible. A clip's sound plays under its speech for the whole clip."""

from __future__ import annotations

import numpy as np

#: Level of a sound relative to full scale (speech from eSpeak NG peaks near full scale).
LEVEL = 0.25


def _siren(t: np.ndarray) -> np.ndarray:
    """A two-tone siren: 650 Hz and 950 Hz alternating every half second."""
    return np.where((t % 1.0) < 0.5, np.sin(2 * np.pi * 650.0 * t), np.sin(2 * np.pi * 950.0 * t))


def _whistle(t: np.ndarray) -> np.ndarray:
    """A high whistle (2.4 kHz) with a slight vibrato (±40 Hz at 5 Hz, phase-modulated)."""
    return np.sin(2 * np.pi * 2400.0 * t - (40.0 / 5.0) * np.cos(2 * np.pi * 5.0 * t))


def _drum(t: np.ndarray) -> np.ndarray:
    """Low drum beats: a decaying 70 Hz thump four times a second."""
    phase = t % 0.25
    return np.sin(2 * np.pi * 70.0 * phase) * np.exp(-phase * 25.0)


def _buzzer(t: np.ndarray) -> np.ndarray:
    """A 150 Hz square-wave buzzer, on and off every 0.2 s."""
    return np.sign(np.sin(2 * np.pi * 150.0 * t)) * ((t % 0.4) < 0.2) * 0.6


SOUNDS = {"siren": _siren, "whistle": _whistle, "drum": _drum, "buzzer": _buzzer}


def sound(name: str, n_samples: int, sample_rate: int, start: int = 0) -> np.ndarray:
    """`n_samples` of sound `name` at `sample_rate` from sample `start` of its timeline (a dialogue's
    clips are windows of one timeline, so overlapping clips carry the same samples), float in
    [-LEVEL, LEVEL]."""
    if name not in SOUNDS:
        raise ValueError(f"unknown sound {name!r} (known: {', '.join(SOUNDS)})")
    t = (start + np.arange(n_samples)) / float(sample_rate)
    return LEVEL * SOUNDS[name](t).astype(np.float64)
