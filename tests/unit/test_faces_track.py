"""Track linking: IoU, appearance across occlusions and jumps, gaps."""

from __future__ import annotations

import numpy as np

from ecem.faces.track import THUMB, appearance, box_iou, link_tracks


def _feat(seed):
    v = np.random.default_rng(seed).normal(size=THUMB * THUMB).astype(np.float32)
    v -= v.mean()
    return v / np.linalg.norm(v)


def test_box_iou():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 0, 1]])


def test_two_faces_crossing_and_occluded_stay_two_tracks():
    fa, fb = _feat(1), _feat(2)
    times, boxes, feats = [], [], []
    for k in range(12):
        ax = 10 + 25 * k  # A moves right fast (IoU between samples is 0)
        bx = 290 - 25 * k  # B moves left; they cross around k = 5..6
        if 4 <= k <= 7:  # B hidden behind A
            frame_boxes, frame_feats = [[ax, 50, ax + 50, 110]], [fa]
        else:
            frame_boxes, frame_feats = [[bx, 50, bx + 50, 110], [ax, 50, ax + 50, 110]], [fb, fa]
        times.append(k * 0.25)
        boxes.append(np.array(frame_boxes, float))
        feats.append(np.array(frame_feats))
    ids = link_tracks(times, boxes, feats, link_iou=0.3, appearance_min=0.6, max_gap_s=2.0)
    a_ids = {int(i[-1]) for i in ids}
    b_ids = {int(i[0]) for i in ids if len(i) == 2}
    assert len(a_ids) == 1 and len(b_ids) == 1 and a_ids != b_ids
    # IoU only (appearance disabled): fast motion fragments the tracks
    ids_iou = link_tracks(times, boxes, feats, link_iou=0.3, appearance_min=2.0, max_gap_s=2.0)
    assert len(set(np.concatenate(ids_iou))) > 2


def test_iou_links_similar_looking_faces_and_gap_closes_tracks():
    f = _feat(3)
    boxes = [np.array([[0, 0, 50, 50]], float), np.array([[5, 0, 55, 50]], float),
             np.array([[200, 0, 250, 50]], float), np.array([[5, 0, 55, 50]], float)]
    times = [0.0, 0.25, 0.5, 5.0]
    other = -f  # anti-correlated appearance: links only by overlap
    stranger = _feat(4)  # far away and unlike anything seen: a new track
    ids = link_tracks(times, boxes, [f[None], other[None], stranger[None], f[None]], 0.3, 0.6, 2.0)
    assert [int(i[0]) for i in ids] == [0, 0, 1, 2]  # last one: beyond max_gap → new track


def test_appearance_descriptor_is_normalised_and_robust():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    d = appearance(frame, np.array([[10, 10, 60, 70], [-5, -5, 1, 1]]))
    assert d.shape == (2, THUMB * THUMB)
    assert abs(np.linalg.norm(d[0]) - 1) < 1e-5 and not d[1].any()  # degenerate box → zeros
