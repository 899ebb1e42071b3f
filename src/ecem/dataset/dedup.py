"""Duplicate-frame removal between consecutive MELD clips of a dialogue.

MELD cuts each utterance's clip from the episode with some slack, so clip *i* often begins with
frames that already closed clip *i-1*. The CSV times give an estimate of that overlap; the frames
confirm and refine it. For a candidate overlap *k*, the first frames of clip *i* must repeat
frames `n_prev - k ...` of clip *i-1*; the candidate with the smallest frame distance wins, ties (within `tie_tolerance`, as in static shots) going to the CSV estimate. If no
candidate is below `max_distance`, the CSV overlap is not confirmed and nothing is cut.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Overlap:
    """Frames to drop from the start of a clip, and how that number was decided.

    `source`: `first` (first kept clip of the dialogue), `csv_none` (times say no overlap),
    `frames` (confirmed/refined by frames), `unconfirmed` (times say overlap, frames disagree),
    `fps_mismatch` (times say overlap, but the two clips' frame rates differ, so frames cannot be
    paired by index: nothing is cut).
    """

    frames: int
    csv_frames: int
    source: str
    distance: float = float("nan")


def csv_overlap_frames(prev_end_s: float, start_s: float, fps: float) -> int:
    """Frames shared by a clip ending at `prev_end_s` and one starting at `start_s`."""
    return max(0, int(round((prev_end_s - start_s) * fps)))


GRID = 8


def frame_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest mean absolute gray-level difference over a GRID × GRID tiling of two frames.

    A whole-frame mean hides a face that moved a few pixels in a static shot, while a
    per-pixel maximum is dominated by codec noise (re-encoded copies of one source frame are
    never bit-identical). Block means average the noise out and keep local motion visible.
    0 = identical; 255 = opposite.
    """
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32))
    diff = diff.reshape(diff.shape[0], diff.shape[1], -1).mean(axis=2)
    h, w = diff.shape[0] // GRID, diff.shape[1] // GRID
    if h == 0 or w == 0:
        return float(diff.mean())
    blocks = diff[: h * GRID, : w * GRID].reshape(GRID, h, GRID, w).mean(axis=(1, 3))
    return float(blocks.max())


def _candidate_distance(prev_tail: np.ndarray, cur_head: np.ndarray, k: int) -> float:
    # Compare the first, middle and last frame of the supposed overlap.
    positions = sorted({0, k // 2, k - 1})
    n_tail = len(prev_tail)
    return float(np.mean([frame_distance(cur_head[j], prev_tail[n_tail - k + j]) for j in positions]))


def refine_overlap(
    prev_tail: np.ndarray, cur_head: np.ndarray, csv_frames: int, search_frames: int,
    max_distance: float, tie_tolerance: float,
) -> Overlap:
    """Decide the overlap from the previous clip's last frames and this clip's first frames.

    `prev_tail` and `cur_head` are gray frames (N, H, W[, 1]); each must hold at least
    `csv_frames + search_frames` frames or the whole clip if it is shorter.
    """
    if csv_frames <= 0:
        return Overlap(0, csv_frames, "csv_none")
    hi = min(csv_frames + search_frames, len(prev_tail), len(cur_head) - 1)
    lo = max(1, csv_frames - search_frames)
    candidates = list(range(lo, hi + 1))
    if not candidates:
        return Overlap(0, csv_frames, "unconfirmed")
    distances = {k: _candidate_distance(prev_tail, cur_head, k) for k in candidates}
    best = min(distances.values())
    if best > max_distance:
        return Overlap(0, csv_frames, "unconfirmed", best)
    tied = [k for k, d in distances.items() if d - best <= tie_tolerance]
    k = min(tied, key=lambda c: (abs(c - csv_frames), c))
    return Overlap(k, csv_frames, "frames", distances[k])
