"""Face crops for the expression models: 5-point similarity alignment to 112×112 when landmarks
exist, otherwise a square crop around the detector's box.

Alignment follows the DDAMFN preprocessing facts: the five landmarks (left eye, right eye, nose,
left and right mouth corner) are mapped by a least-squares similarity transform onto each of five
pose templates of a 112×112 face (profile left, left, frontal, right, profile right); the template
with the smallest residual wins and the frame is warped with it (black border).
"""

from __future__ import annotations

import cv2
import numpy as np

#: 5-point templates of a 112×112 face for five head poses (the values the DDAMFN/insightface
#: alignment uses), order: left eye, right eye, nose, left mouth corner, right mouth corner.
POSE_TEMPLATES_112 = np.array([
    [[55.550, 49.477], [62.116, 49.339], [38.075, 70.237], [55.017, 92.262], [61.466, 92.979]],
    [[47.241, 48.598], [72.887, 49.540], [40.555, 71.067], [47.423, 93.643], [71.236, 94.353]],
    [[33.566, 40.559], [78.321, 40.559], [55.338, 64.967], [38.479, 90.276], [73.591, 90.276]],
    [[39.516, 49.540], [65.162, 48.598], [71.849, 71.067], [41.167, 94.353], [64.980, 93.643]],
    [[50.225, 49.339], [56.791, 49.477], [74.266, 70.237], [50.875, 92.979], [65.317, 92.262]],
], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping `src` points onto
    `dst` points (Umeyama's closed form); returns the 2×3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    var_s = (s0 ** 2).sum() / len(src)
    scale = (sig * np.diag(sign)).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def alignment_matrix(landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The 2×3 warp of the best-fitting pose template (templates scaled to `size`)."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    best, best_err = None, np.inf
    for template in POSE_TEMPLATES_112 * (size / 112.0):
        m = similarity_transform(pts, template)
        err = np.linalg.norm(pts @ m[:, :2].T + m[:, 2] - template, axis=1).sum()
        if err < best_err:
            best, best_err = m, err
    return best


def align_face(frame: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The face warped to `size`×`size` by its 5 landmarks."""
    return cv2.warpAffine(frame, alignment_matrix(landmarks, size), (size, size), borderValue=0)


def crop_face(frame: np.ndarray, box: np.ndarray, size: int, margin: float = 0.0) -> np.ndarray:
    """Square crop centred on `box` (side = longer box side × (1 + margin)), zero-padded where
    it leaves the frame, resized to `size`×`size`."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1.0 + margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = size / max(side, 1.0)
    m = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]])
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderValue=0)
