"""Face detectors behind one interface: MTCNN (facenet-pytorch, bundled weights — the offline
default) and RetinaFace (the paper's detector; the `retinaface-pytorch` ResNet-50 network with
weights from a configured file or URL).

Both take a batch of same-sized RGB frames and return, per frame, boxes `[x0, y0, x1, y1]` in
frame pixels, detection scores and 5-point landmarks (left eye, right eye, nose, left and right
mouth corner). The same post-processing applies to both: score threshold, minimum face size
(shorter box side, in pixels), non-maximum suppression at the configured IoU, boxes clipped to the
frame, sorted by score.
"""

from __future__ import annotations

import dataclasses
import logging
import zipfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from torchvision.ops import nms

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Detections:
    """The faces found in one frame: `boxes (N, 4)`, `scores (N,)`, `landmarks (N, 5, 2)`."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)


class FaceDetector(Protocol):
    """What every detector offers."""

    name: str

    def detect(self, frames: np.ndarray) -> list[Detections]:
        """Detect faces in a batch `(B, H, W, 3)` of uint8 RGB frames."""
        ...


def postprocess(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, width: int, height: int,
                score_threshold: float, min_face_px: float, nms_iou: float) -> Detections:
    """Threshold, drop small faces, NMS, clip to the frame, sort by score (all detectors)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    landmarks = np.asarray(landmarks, dtype=np.float32).reshape(-1, 5, 2)
    if len(scores) == 0:
        return Detections.empty()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    keep = (scores >= score_threshold) & (side >= min_face_px)
    boxes, scores, landmarks = boxes[keep], scores[keep], landmarks[keep]
    if len(scores) == 0:
        return Detections.empty()
    order = nms(torch.from_numpy(boxes), torch.from_numpy(scores), nms_iou).numpy()
    return Detections(boxes[order], scores[order], landmarks[order])


class MTCNNDetector:
    """facenet-pytorch's MTCNN (P-, R-, O-net cascade; weights ship inside the package)."""

    name = "mtcnn"

    def __init__(self, cfg: Mapping[str, Any], device: torch.device) -> None:
        from facenet_pytorch import MTCNN

        mt = cfg["mtcnn"]
        self.cfg = cfg
        self.model = MTCNN(min_face_size=int(mt["min_pyramid_face_px"]), thresholds=list(mt["thresholds"]),
                           factor=float(mt["factor"]), keep_all=True, select_largest=False,
                           post_process=False, device=device)
        self.model.eval()

    def detect(self, frames: np.ndarray) -> list[Detections]:
        if len(frames) == 0:
            return []
        height, width = frames.shape[1:3]
        boxes, probs, points = self.model.detect(np.ascontiguousarray(frames), landmarks=True)
        out = []
        for b, p, lm in zip(boxes, probs, points):
            if b is None:
                out.append(Detections.empty())
                continue
            # under numpy 2 facenet-pytorch hands back object arrays: cast explicitly
            out.append(postprocess(np.asarray(b, dtype=np.float32), np.asarray(p, dtype=np.float32),
                                   np.asarray(lm, dtype=np.float32), width, height,
                                   self.cfg["score_threshold"], self.cfg["min_face_px"], self.cfg["nms_iou"]))
        return out


# RetinaFace (ResNet-50) anchor layout and box-coding variances of the released weights.
_MIN_SIZES = ((16, 32), (64, 128), (256, 512))
_STEPS = (8, 16, 32)
_VARIANCE = (0.1, 0.2)
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


@lru_cache(maxsize=8)
def anchor_priors(height: int, width: int) -> torch.Tensor:
    """Anchor centres and sizes `(P, 4)` as `(cx, cy, w, h)` relative to the image size, in the
    order the RetinaFace heads emit them (level, row, column, anchor size)."""
    parts = []
    for sizes, step in zip(_MIN_SIZES, _STEPS):
        rows, cols = -(-height // step), -(-width // step)
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * step / height, (np.arange(cols) + 0.5) * step / width,
                             indexing="ij")
        per = [np.stack([cx, cy, np.full_like(cx, s / width), np.full_like(cy, s / height)], -1) for s in sizes]
        parts.append(np.stack(per, axis=2).reshape(-1, 4))
    return torch.from_numpy(np.concatenate(parts).astype(np.float32))


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a torch file, or from a plain zip archive holding one (the form the
    retinaface-pytorch release uses)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        if not zipfile.is_zipfile(path):
            raise
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if not n.endswith("/")]
            if len(members) != 1:
                raise ValueError(f"{path}: expected one weights file in the archive, found {members}") from None
            with zf.open(members[0]) as fh:
                obj = torch.load(fh, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return {k.removeprefix("module."): v for k, v in obj.items()}


class RetinaFaceDetector:
    """RetinaFace with a ResNet-50 backbone, FPN and SSH context modules (the network class of
    `retinaface-pytorch`); anchors, decoding and NMS are ours and run batched."""

    name = "retinaface"

    def __init__(self, cfg: Mapping[str, Any], device: torch.device) -> None:
        from retinaface.network import RetinaFace

        rc = cfg["retinaface"]
        self.cfg = cfg
        self.device = device
        self.max_size = int(rc["max_size"])
        if not (rc.get("weights") or rc.get("url")):
            raise ValueError("features.faces.detector.retinaface needs `weights` (a local file) or `url`: "
                             "RetinaFace has no bundled weights")
        net = RetinaFace(name="Resnet50", pretrained=False, in_channels=256, out_channels=256,
                         return_layers={"layer2": 1, "layer3": 2, "layer4": 3})
        if rc.get("weights"):
            state = load_state_dict_file(rc["weights"])
        else:
            log.info("fetching RetinaFace weights from %s (configured URL)", rc["url"])
            state = torch.hub.load_state_dict_from_url(rc["url"], map_location="cpu", progress=False)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"RetinaFace weights do not fit the ResNet-50 RetinaFace: missing keys "
                             f"{missing[:5]}{'…' if len(missing) > 5 else ''}, unexpected keys "
                             f"{unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
        self.net = net.to(device).eval()

    def _prepare(self, frames: np.ndarray) -> tuple[torch.Tensor, float]:
        height, width = frames.shape[1:3]
        scale = self.max_size / max(height, width)
        if abs(scale - 1.0) > 1e-6:
            size = (int(round(width * scale)), int(round(height * scale)))
            frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames])
        x = (frames.astype(np.float32) / 255.0 - _MEAN) / _STD
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), scale

    @torch.no_grad()
    def detect(self, frames: np.ndarray) -> list[Detections]:
        if len(frames) == 0:
            return []
        height, width = frames.shape[1:3]
        x, scale = self._prepare(frames)
        in_h, in_w = x.shape[2:]
        loc, conf, landm = self.net(x.to(self.device))
        priors = anchor_priors(in_h, in_w).to(self.device)
        scores = torch.softmax(conf, dim=-1)[..., 1]
        centre = priors[None, :, :2] + loc[..., :2] * _VARIANCE[0] * priors[None, :, 2:]
        size = priors[None, :, 2:] * torch.exp(loc[..., 2:] * _VARIANCE[1])
        boxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
        points = priors[None, :, None, :2] + landm.view(*landm.shape[:2], 5, 2) * _VARIANCE[0] * priors[None, :, None, 2:]
        to_px = torch.tensor([in_w, in_h], dtype=torch.float32, device=self.device) / scale
        boxes = boxes * to_px.repeat(2)
        points = points * to_px
        out = []
        for b, s, p in zip(boxes.cpu().numpy(), scores.cpu().numpy(), points.cpu().numpy()):
            keep = s >= self.cfg["score_threshold"]
            keep_idx = np.flatnonzero(keep)
            if len(keep_idx) > self.cfg["retinaface"]["top_k"]:
                keep_idx = keep_idx[np.argsort(-s[keep_idx])[: self.cfg["retinaface"]["top_k"]]]
            out.append(postprocess(b[keep_idx], s[keep_idx], p[keep_idx], width, height,
                                   self.cfg["score_threshold"], self.cfg["min_face_px"], self.cfg["nms_iou"]))
        return out


def build_detector(cfg: Mapping[str, Any], device: torch.device) -> FaceDetector:
    """The detector named by `cfg["name"]` (the `features.faces.detector` config)."""
    if cfg["name"] == "mtcnn":
        return MTCNNDetector(cfg, device)
    if cfg["name"] == "retinaface":
        return RetinaFaceDetector(cfg, device)
    raise ValueError(f"unknown face detector {cfg['name']!r} (mtcnn | retinaface)")
