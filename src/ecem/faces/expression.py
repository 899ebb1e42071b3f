"""Facial-expression models behind one interface: the FER2013 CNN shipped by the PyPI package
`facial_emotion_recognition` 0.3.4 (the offline default) and DDAMFN (ours, loading the authors'
checkpoints).

A model turns the faces of a frame into crops (`crops`), and a batch of crops into probabilities
over its native labels (`classify`); `labels` gives that native order and `ecem.faces.labels`
maps it onto MELD's emotion names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from ecem.faces import ddamfn
from ecem.faces.align import align_face, crop_face
from ecem.faces.detect import Detections
from ecem.faces.labels import DDAMFN_LABEL_SETS, FER2013_LABELS, label_map

log = logging.getLogger(__name__)


class ExpressionModel(Protocol):
    name: str
    labels: tuple[str, ...]

    def crops(self, frame: np.ndarray, dets: Detections) -> np.ndarray:
        """Model-ready crops `(N, …)` of a frame's faces (uint8)."""
        ...

    def classify(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities `(N, len(labels))` for a batch of crops."""
        ...


def fer2013_weights_path() -> Path:
    """`model.pkl` inside the installed `facial_emotion_recognition` package."""
    return Path(str(resources.files("facial_emotion_recognition").joinpath("model", "model.pkl")))


class FER2013Model:
    """The FER2013 CNN of `facial_emotion_recognition` (NetworkV2: four conv blocks + two linear
    layers on a 48×48 grey face, mean/std 0.5, 7 sigmoid outputs). As in the package, the face is
    the detector's box cut from the grey frame and resized to 48×48. The distribution is the
    sigmoid outputs divided by their sum (the network has independent sigmoid outputs)."""

    name = "fer2013"
    labels = FER2013_LABELS
    size = 48

    def __init__(self, cfg: Mapping[str, Any], device: torch.device) -> None:
        from facial_emotion_recognition.networks import NetworkV2

        path = Path(cfg["fer2013"]["weights"]) if cfg["fer2013"].get("weights") else fer2013_weights_path()
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, Mapping) or "network" not in blob:
            raise ValueError(f"{path}: expected the facial_emotion_recognition layout {{'network': ...}}")
        self.net = NetworkV2(in_c=1, nl=32, out_f=len(self.labels))
        self.net.load_state_dict(blob["network"])
        self.net.to(device).eval()
        self.device = device
        self.weights = str(path)

    def crops(self, frame: np.ndarray, dets: Detections) -> np.ndarray:
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        out = np.zeros((len(dets), self.size, self.size), np.uint8)
        for i, (x0, y0, x1, y1) in enumerate(dets.boxes):
            xa, ya = int(round(max(0, x0))), int(round(max(0, y0)))
            xb, yb = int(round(min(w, x1))), int(round(min(h, y1)))
            if xb - xa >= 2 and yb - ya >= 2:
                out[i] = cv2.resize(gray[ya:yb, xa:xb], (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        return out

    @torch.no_grad()
    def classify(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        x = torch.from_numpy(crops.astype(np.float32) / 255.0)[:, None]
        x = ((x - 0.5) / 0.5).to(self.device)
        out = self.net(x).float().clamp_min(1e-8)
        return (out / out.sum(dim=1, keepdim=True)).cpu().numpy()


class DDAMFNModel:
    """DDAMFN on 112×112 RGB faces: 5-point aligned when the detector gives landmarks and
    `align` is on, otherwise a square crop of the box (with `margin`)."""

    name = "ddamfn"

    def __init__(self, cfg: Mapping[str, Any], device: torch.device) -> None:
        dc = cfg["ddamfn"]
        if not dc.get("weights"):
            raise ValueError("features.faces.expression.ddamfn.weights must name a DDAMFN checkpoint "
                             "(the authors' .pth with 'model_state_dict')")
        self.labels = DDAMFN_LABEL_SETS[dc["label_set"]]
        self.net = ddamfn.load_ddamfn(dc["weights"], num_class=len(self.labels), num_head=dc["num_head"])
        self.net.to(device).eval()
        self.device = device
        self.align = bool(dc["align"])
        self.margin = float(dc["crop_margin"])
        self.weights = str(dc["weights"])
        self.mean = torch.tensor(ddamfn.MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(ddamfn.STD).view(1, 3, 1, 1)

    def crops(self, frame: np.ndarray, dets: Detections) -> np.ndarray:
        size = ddamfn.INPUT_SIZE
        out = np.zeros((len(dets), size, size, 3), np.uint8)
        for i in range(len(dets)):
            lm = dets.landmarks[i]
            if self.align and np.isfinite(lm).all() and np.ptp(lm[:, 0]) > 1:
                out[i] = align_face(frame, lm, size)
            else:
                out[i] = crop_face(frame, dets.boxes[i], size, self.margin)
        return out

    @torch.no_grad()
    def classify(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
        x = ((x - self.mean) / self.std).to(self.device)
        return torch.softmax(self.net(x).float(), dim=1).cpu().numpy()


def build_expression_model(cfg: Mapping[str, Any], device: torch.device) -> ExpressionModel:
    """The model named by `cfg["name"]` (the `features.faces.expression` config)."""
    if cfg["name"] == "fer2013":
        model: ExpressionModel = FER2013Model(cfg, device)
    elif cfg["name"] == "ddamfn":
        model = DDAMFNModel(cfg, device)
    else:
        raise ValueError(f"unknown expression model {cfg['name']!r} (fer2013 | ddamfn)")
    log.info("expression model %s, labels %s → %s", model.name, model.labels, label_map(model.labels))
    return model
