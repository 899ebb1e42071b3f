"""BLEURT through its PyTorch port (`bleurt_pytorch`): scored only when a model is configured and
the port imports; otherwise reported unavailable with the reason, never a made-up number."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ecem.evaluate.metrics.base import MeanMetric, Pairs, package_version


class Bleurt(MeanMetric):
    key = "bleurt"

    def __init__(self, cfg: Mapping[str, Any], device: str):
        self.cfg, self.device = cfg, device
        self._model: tuple[Any, Any] | None = None

    def settings(self) -> str:
        return f"bleurt-pytorch {package_version('bleurt-pytorch')}, model {self.cfg['model'] or 'none configured'}"

    def unavailable(self) -> str | None:
        if not self.cfg["model"]:
            return "no BLEURT model configured (evaluate.bleurt.model is null)"
        try:
            import bleurt_pytorch  # noqa: F401
        except ImportError:
            return "package bleurt-pytorch (BLEURT's PyTorch port) is not installed"
        return None

    def score(self, pairs: Pairs) -> Mapping[str, np.ndarray]:
        import torch
        from bleurt_pytorch import BleurtForSequenceClassification, BleurtTokenizer

        if self._model is None:
            tok = BleurtTokenizer.from_pretrained(self.cfg["model"])
            model = BleurtForSequenceClassification.from_pretrained(self.cfg["model"]).eval().to(self.device)
            self._model = (tok, model)
        tok, model = self._model
        size, out = int(self.cfg["batch_size"]), []
        with torch.inference_mode():
            for i in range(0, len(pairs), size):
                enc = tok(pairs.references[i:i + size], pairs.candidates[i:i + size], padding="longest",
                          truncation=True, return_tensors="pt").to(self.device)
                out.append(model(**enc).logits.flatten().float().cpu().numpy())
        return {"bleurt": np.concatenate(out).astype(float) if out else np.zeros(0)}
