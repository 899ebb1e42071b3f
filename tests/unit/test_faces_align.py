"""5-point alignment and crops."""

from __future__ import annotations

import numpy as np

from ecem.faces.align import POSE_TEMPLATES_112, align_face, alignment_matrix, crop_face, similarity_transform


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_alignment_puts_landmarks_on_the_frontal_template():
    frontal = POSE_TEMPLATES_112[2]
    # a frontal face twice as large, shifted: its landmarks land on the frontal template
    lm = frontal * 2.0 + np.array([30.0, 50.0])
    m = alignment_matrix(lm)
    np.testing.assert_allclose(lm @ m[:, :2].T + m[:, 2], frontal, atol=1e-6)
    frame = np.zeros((400, 400, 3), np.uint8)
    x, y = (lm[0] + 0.5).astype(int)
    frame[y - 3:y + 3, x - 3:x + 3] = 255  # a bright left eye
    out = align_face(frame, lm)
    assert out.shape == (112, 112, 3)
    ey, ex = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
    assert abs(ex - frontal[0, 0]) <= 2 and abs(ey - frontal[0, 1]) <= 2


def test_crop_face_is_square_and_padded():
    frame = np.full((100, 100, 3), 200, np.uint8)
    out = crop_face(frame, np.array([-20, 10, 30, 50]), 48, margin=0.0)
    assert out.shape == (48, 48, 3)
    assert out[:, :10].max() == 0 and out[24, 40:].min() == 200  # left part outside the frame
