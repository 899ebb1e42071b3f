"""Linking face detections across the sampled frames of one utterance segment into tracks.

Rule (documented in the README): frames are visited in order; every open track (last seen at most
`max_gap_s` seconds before) is scored against every detection of the frame by
`IoU(last box, box) + NCC(appearance)`, where the appearance is a small grey-level thumbnail of
the face (zero mean, unit norm, so NCC is its dot product) and a track's NCC is the best over its
last few appearances (so a partly occluded view still matches an earlier partly occluded one). A pair may link only if its IoU reaches
`link_iou` **or** its appearance correlation reaches `appearance_min`; the pairs are assigned one to
one by maximum total score (Hungarian algorithm). Unlinked detections open new tracks. The
appearance term keeps a person's track across a short occlusion or a jump between sampled frames,
where IoU alone would start a new track; set `appearance_min` above 1 for pure IoU linking.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

THUMB = 16  # side of the appearance thumbnail, pixels
GALLERY = 32  # appearances a track remembers (similarity = best match among them)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes `a (N, 4)` and `b (M, 4)` → `(N, M)`."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def appearance(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Appearance descriptors `(N, THUMB*THUMB)` of the boxed faces of an RGB frame."""
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    h, w = gray.shape[:2]
    out = np.zeros((len(boxes), THUMB * THUMB), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        xa, ya = int(max(0, np.floor(x0))), int(max(0, np.floor(y0)))
        xb, yb = int(min(w, np.ceil(x1))), int(min(h, np.ceil(y1)))
        if xb - xa < 2 or yb - ya < 2:
            continue
        thumb = cv2.resize(gray[ya:yb, xa:xb], (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
        thumb = thumb.ravel() - thumb.mean()
        norm = np.linalg.norm(thumb)
        out[i] = thumb / norm if norm > 0 else thumb
    return out


@dataclasses.dataclass
class _Track:
    track_id: int
    box: np.ndarray
    gallery: list[np.ndarray]
    last_t: float

    def similarity(self, feats: np.ndarray) -> np.ndarray:
        """Best correlation of each descriptor with the track's recent appearances."""
        return (np.asarray(feats) @ np.stack(self.gallery).T).max(axis=1)


def link_tracks(times: Sequence[float], boxes: Sequence[np.ndarray], features: Sequence[np.ndarray],
                link_iou: float, appearance_min: float, max_gap_s: float) -> list[np.ndarray]:
    """Track ids (0, 1, … in order of first appearance) for the detections of each frame.

    `times[i]` is frame i's time in seconds, `boxes[i]` its `(N_i, 4)` boxes, `features[i]` the
    `(N_i, D)` appearance descriptors (see `appearance`). Returns one int array per frame.
    """
    tracks: list[_Track] = []
    result: list[np.ndarray] = []
    for t, frame_boxes, frame_feats in zip(times, boxes, features):
        frame_boxes = np.asarray(frame_boxes, dtype=np.float64).reshape(-1, 4)
        ids = np.full(len(frame_boxes), -1, dtype=np.int64)
        open_tracks = [tr for tr in tracks if t - tr.last_t <= max_gap_s + 1e-9]
        if open_tracks and len(frame_boxes):
            iou = box_iou(np.stack([tr.box for tr in open_tracks]), frame_boxes)
            ncc = np.stack([tr.similarity(frame_feats) for tr in open_tracks])
            allowed = (iou >= link_iou) | (ncc >= appearance_min)
            score = np.where(allowed, iou + ncc, -1e6)
            rows, cols = linear_sum_assignment(-score)
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    tr = open_tracks[r]
                    ids[c] = tr.track_id
                    tr.box, tr.last_t = frame_boxes[c], t
                    tr.gallery = [*tr.gallery[-(GALLERY - 1):], np.asarray(frame_feats[c])]
        for c in np.flatnonzero(ids < 0):
            tr = _Track(len(tracks), frame_boxes[c], [np.asarray(frame_feats[c])], t)
            tracks.append(tr)
            ids[c] = tr.track_id
        result.append(ids)
    return result
