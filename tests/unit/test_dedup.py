"""Overlap estimation from CSV times and refinement from frames."""

import numpy as np
import pytest

from ecem.dataset.dedup import csv_overlap_frames, frame_distance, refine_overlap


def timeline(n, seed=0):
    """Gray frames of a textured static background with a bright square moving 3 px/frame."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 120, size=(96, 128), dtype=np.uint8)
    frames = []
    for i in range(n):
        frame = background.copy()
        x = 3 * i % 100
        frame[30:60, x:x + 24] = 250
        frames.append(frame[..., None])
    return np.stack(frames)


def noisy(frames, seed):
    rng = np.random.default_rng(seed)
    return np.clip(frames.astype(int) + rng.integers(-3, 4, frames.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("true_k,csv_k", [(5, 5), (5, 3), (5, 7), (1, 2)])
def test_refine_finds_the_true_overlap(true_k, csv_k):
    tl = timeline(60)
    prev, cur = noisy(tl[:30], 1), noisy(tl[30 - true_k:], 2)  # cur starts true_k frames early
    ov = refine_overlap(prev[-12:], cur[:12], csv_k, search_frames=3, max_distance=8, tie_tolerance=1)
    assert (ov.frames, ov.source) == (true_k, "frames")


def test_unconfirmed_overlap_cuts_nothing():
    prev, cur = timeline(30, seed=1), timeline(30, seed=2)  # different scenes
    ov = refine_overlap(prev[-10:], cur[:10], 4, search_frames=2, max_distance=8, tie_tolerance=1)
    assert (ov.frames, ov.source) == (0, "unconfirmed") and ov.distance > 8


def test_static_shot_ties_go_to_the_csv_estimate():
    still = np.repeat(timeline(1), 40, axis=0)
    ov = refine_overlap(noisy(still[:20], 1)[-10:], noisy(still[20:], 2)[:10], 4, 3, 8, 1)
    assert (ov.frames, ov.source) == (4, "frames")


def test_csv_overlap_frames():
    assert csv_overlap_frames(10.0, 9.8, 25) == 5
    assert csv_overlap_frames(10.0, 10.5, 25) == 0  # a gap is no overlap
    assert refine_overlap(np.zeros((0, 4, 4, 1)), np.zeros((0, 4, 4, 1)), 0, 3, 8, 1).source == "csv_none"


def test_frame_distance_sees_local_motion_that_a_global_mean_hides():
    a = timeline(1)[0]
    b = a.copy()
    b[0:12, 0:16] = 255 - b[0:12, 0:16]  # exactly one of the 8 x 8 blocks changes
    global_mean = np.mean(np.abs(a.astype(int) - b.astype(int)))
    assert frame_distance(a, a) == 0
    assert frame_distance(a, b) == pytest.approx(64 * global_mean)
