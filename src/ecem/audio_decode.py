"""A clip's audio as the speech models take it: mono float32 samples at their rate (PyAV)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from ecem.media import open_media


AUDIO_SAMPLE_RATE = 16000  # what Whisper and the other speech encoders take


def load_audio(path: str | Path, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of `path` to mono float32 in [-1, 1) at `sample_rate` (PyAV).

    A file without an audio stream gives an empty array (callers treat that as silence)."""
    with open_media(path) as container:
        if not container.streams.audio:
            return np.zeros(0, dtype=np.float32)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        parts: list[np.ndarray] = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            parts.append(out.to_ndarray().reshape(-1))
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32) / 32768.0
