"""The audio-token contract (modality A) and its temporal pooling.

A speech encoder turns each deduplicated utterance segment's audio into encoder frames (Whisper:
one per 20 ms). A sample's audio tokens are those frames over its prefix clip (segments 0..target,
in order) mean-pooled into `A` consecutive, near-equal time bins, mirroring the `T` temporal video
tokens. They are stored in the token file form both modalities share (:mod:`ecem.tokens`): one
Parquet row per sample in `results/features/audio.parquet` (`tokens` float16 LE C-order bytes,
`shape` `[A, D]`, the columns of :data:`SCHEMA`) plus the same tokens as one `(samples, A, D)`
array `audio.tokens.npy` that :class:`ecem.tokens.TokenStore` reads lazily. The video-token
contract is its sibling, :mod:`ecem.features.video`.

Pooling works from cumulative sums of a dialogue's frame timeline, so pooling every prefix of a
dialogue costs `O(A * D)` per sample instead of re-reading the prefix: the stage's cost stays
linear in dialogue length.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ecem import tokens

STAGE = "features/audio"
PADDING_NONE = tokens.PADDING_NONE
PADDING_ZEROS_AFTER = tokens.PADDING_ZEROS_AFTER
POOLING_RULE = (
    "the encoder frames covering real audio (ceil(samples / samples_per_frame) per <=30 s window; "
    "Whisper's padding frames dropped) of segments 0..target are concatenated in order; frame range "
    "[floor(i*n/A), floor((i+1)*n/A)) is averaged into token i (A near-equal consecutive bins)"
)
PADDING_RULE = (
    "when a prefix has n < A encoder frames, each frame is its own token and the A - n missing "
    "tokens are zero rows appended after the real ones (as the visual temporal tokens)"
)

SCHEMA = pa.schema([
    ("sample_id", pa.string()),
    ("meld_split", pa.string()),
    ("dialogue_id", pa.int64()),
    ("utterance_id", pa.int64()),
    ("tokens", pa.large_binary()),  # float16 little-endian, C order, `shape` = [A, D]
    ("shape", pa.list_(pa.int32())),
    ("n_encoder_frames", pa.int64()),  # real encoder frames pooled (before padding)
    ("duration_s", pa.float64()),  # seconds of audio in the prefix
    ("n_segments", pa.int32()),  # segments of the prefix
    ("padding", pa.string()),  # none | zeros_after
])


def peak_dbfs(audio: np.ndarray) -> float:
    """Peak level of float audio in [-1, 1) in dBFS; -inf for silence or no samples."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def real_frames(n_samples: int, samples_per_frame: int) -> int:
    """Encoder frames that cover `n_samples` of real audio: ceil(n_samples / samples_per_frame)."""
    return -(-int(n_samples) // int(samples_per_frame))


def cumulative(frames: np.ndarray) -> np.ndarray:
    """(n + 1, D) float64 running sums of (n, D) frames, row 0 zero: what :func:`pool_prefix` takes."""
    out = np.zeros((frames.shape[0] + 1, frames.shape[1]), dtype=np.float64)
    np.cumsum(frames, axis=0, dtype=np.float64, out=out[1:])
    return out


def pool_prefix(csum: np.ndarray, n: int, num_tokens: int) -> tuple[np.ndarray, str]:
    """The `num_tokens` (A) tokens of the first `n` frames of a timeline, from its running sums.

    Returns ((A, D) float32, padding): token i averages frames [floor(i*n/A), floor((i+1)*n/A)),
    so every frame counts once and bins differ by at most one frame; with n < A see PADDING_RULE.
    """
    if n <= 0:
        raise ValueError("no encoder frames to pool")
    if n > csum.shape[0] - 1:
        raise ValueError(f"asked for {n} frames of a {csum.shape[0] - 1}-frame timeline")
    a = int(num_tokens)
    if n >= a:
        edges = (np.arange(a + 1, dtype=np.int64) * n) // a
        sums = csum[edges[1:]] - csum[edges[:-1]]
        return (sums / np.diff(edges)[:, None]).astype(np.float32), PADDING_NONE
    out = np.zeros((a, csum.shape[1]), dtype=np.float32)
    out[:n] = np.diff(csum[: n + 1], axis=0)
    return out, PADDING_ZEROS_AFTER


def temporal_pool(frames: np.ndarray, num_tokens: int) -> tuple[np.ndarray, str]:
    """Mean-pool (n, D) frames into (A, D) tokens (:func:`pool_prefix` over all of them)."""
    return pool_prefix(cumulative(frames), int(frames.shape[0]), num_tokens)


def token_bytes(array: np.ndarray) -> bytes:
    """The stored form of a token matrix: float16 little-endian, C order."""
    return np.ascontiguousarray(array, dtype=tokens.TOKEN_DTYPE).tobytes()


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings an audio feature file was written with (model, `num_tokens` A,
    `hidden_size` D, `frame_s`, pooling, ...), checking it is an audio feature file."""
    return tokens.read_settings(path, stage=STAGE)


def read_audio_layout(path: str | Path) -> tuple[int, int]:
    """(A, D) of every sample's audio tokens, from a feature file's metadata."""
    s = read_settings(path)
    return int(s["num_tokens"]), int(s["hidden_size"])
