"""Frames of the demo corpus: real face photographs moving over real backgrounds.

A dialogue is rendered as one continuous timeline of frames, and each utterance clip is a window
of that timeline, exactly as MELD's clips are windows of an episode. Overlapping windows
therefore share identical frames, which is what the dataset stage's duplicate removal must find.
Every frame is a pure function of (dialogue, global frame index), so a test can re-render any
frame and the planted face boxes are known exactly.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import cv2
import numpy as np

# The astronaut photograph (scikit-image) and the face box MTCNN finds in it, in its pixels.
_FACE_CROP = (150, 30, 300, 210)  # x0, y0, x1, y1 of the sprite cut from the photograph
_FACE_IN_PHOTO = (181.0, 62.0, 268.0, 172.0)
# Face scales are relative to a frame of this height (the demo's); smaller frames (the rehearsal's
# 160×120) get proportionally smaller faces, so the faces fit and the scene keeps its layout.
_REFERENCE_HEIGHT = 240

# Real photographs without faces, used as per-utterance backgrounds (all ship with scikit-image).
_BACKGROUNDS = ("coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "colorwheel",
                "coins", "brick", "grass", "gravel", "moon", "horse", "clock")


@dataclasses.dataclass(frozen=True)
class FacePlan:
    """One planted face: horizontal bounce at `speed_px` per frame, gentle scale oscillation."""

    x_phase: float
    y: float
    speed_px: float
    scale: float
    mirrored: bool = False


@lru_cache(maxsize=1)
def _face_sprite() -> np.ndarray:
    import skimage.data

    x0, y0, x1, y1 = _FACE_CROP
    return np.ascontiguousarray(skimage.data.astronaut()[y0:y1, x0:x1])


@lru_cache(maxsize=None)
def _background(background: int | str, width: int, height: int) -> np.ndarray:
    """A background photograph: scikit-image's photograph of that name, or the demo's n-th."""
    import skimage.data
    from skimage.util import img_as_ubyte

    name = background if isinstance(background, str) else _BACKGROUNDS[background % len(_BACKGROUNDS)]
    img = img_as_ubyte(getattr(skimage.data, name)())  # bool (horse) and float photographs too
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return cv2.resize(np.ascontiguousarray(img[..., :3]), (width, height), interpolation=cv2.INTER_AREA)


def _triangle(t: float, period: float) -> float:
    """Triangle wave in [0, 1] with the given period."""
    phase = (t / period) % 1.0
    return 2 * phase if phase < 0.5 else 2 - 2 * phase


def face_geometry(plan: FacePlan, frame_idx: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Sprite placement (x, y, w, h) of a planted face at a global frame index."""
    sprite_h, sprite_w = _face_sprite().shape[:2]
    size = plan.scale * height / _REFERENCE_HEIGHT
    scale = size * (1.0 + 0.08 * np.sin(frame_idx / 9.0))
    w, h = int(round(sprite_w * scale)), int(round(sprite_h * scale))
    # The bounce period comes from the largest sprite width, not the oscillating one: a period
    # that changed with the scale would make the face jump at large frame indices.
    largest_w = int(round(sprite_w * size * 1.08))
    travel = max(width - largest_w, 1)
    period = 2.0 * travel / plan.speed_px
    x = int(round(_triangle(frame_idx + plan.x_phase * period, period) * travel))
    y = int(round(min(max(plan.y - h / 2, 0), height - h)))
    return x, y, w, h


def face_box(plan: FacePlan, frame_idx: int, width: int, height: int) -> list[float]:
    """The planted face's box [x0, y0, x1, y1] in frame pixels (the photograph's face box,
    carried through the sprite's crop, scale and mirror)."""
    x, y, w, h = face_geometry(plan, frame_idx, width, height)
    sx = w / (_FACE_CROP[2] - _FACE_CROP[0])
    sy = h / (_FACE_CROP[3] - _FACE_CROP[1])
    fx0, fy0, fx1, fy1 = (_FACE_IN_PHOTO[0] - _FACE_CROP[0], _FACE_IN_PHOTO[1] - _FACE_CROP[1],
                          _FACE_IN_PHOTO[2] - _FACE_CROP[0], _FACE_IN_PHOTO[3] - _FACE_CROP[1])
    if plan.mirrored:
        crop_w = _FACE_CROP[2] - _FACE_CROP[0]
        fx0, fx1 = crop_w - fx1, crop_w - fx0
    return [x + fx0 * sx, y + fy0 * sy, x + fx1 * sx, y + fy1 * sy]


def render_frame(background: int | str, faces: list[FacePlan], frame_idx: int, width: int,
                 height: int) -> np.ndarray:
    """Render one RGB frame: background photograph `background` (a scikit-image photograph's
    name, or the index of one of the demo's) with the planted faces."""
    frame = _background(background, width, height).copy()
    for plan in faces:
        x, y, w, h = face_geometry(plan, frame_idx, width, height)
        sprite = _face_sprite()
        if plan.mirrored:
            sprite = sprite[:, ::-1]
        sprite = cv2.resize(sprite, (w, h), interpolation=cv2.INTER_AREA)
        x1, y1 = min(x + w, width), min(y + h, height)
        frame[y:y1, x:x1] = sprite[: y1 - y, : x1 - x]
    return frame
