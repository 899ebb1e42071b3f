"""Expression models: the bundled FER2013 CNN on a real face; DDAMFN checkpoints in the authors'
layout (random weights); the label mapping onto MELD's emotions."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from ecem.faces import ddamfn
from ecem.faces.detect import Detections
from ecem.faces.expression import build_expression_model
from ecem.faces.labels import DDAMFN_LABEL_SETS, FER2013_LABELS, MELD_LABELS, label_map, to_meld

# the astronaut photograph's face box and 5 landmarks (eyes, nose, mouth corners), in its pixels
ASTRONAUT_BOX = np.array([[181.0, 62.0, 268.0, 172.0]], np.float32)
ASTRONAUT_LM = np.array([[[205, 103], [245, 104], [226, 128], [208, 147], [240, 148]]], np.float32)

CFG = {"name": "fer2013", "fer2013": {"weights": None},
       "ddamfn": {"weights": None, "label_set": "rafdb", "num_head": 2, "align": True, "crop_margin": 0.2}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _astronaut():
    return skimage.data.astronaut(), Detections(ASTRONAUT_BOX, np.ones(1, np.float32), ASTRONAUT_LM)


def test_fer2013_distribution_in_documented_order():
    model = build_expression_model(CFG, torch.device("cpu"))
    assert model.labels == ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
    frame, dets = _astronaut()
    crops = model.crops(frame, dets)
    assert crops.shape == (1, 48, 48) and crops.dtype == np.uint8 and crops.std() > 10
    probs = model.classify(crops)
    assert probs.shape == (1, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert FER2013_LABELS[int(probs.argmax())] == "Happy"  # she smiles
    meld = to_meld(probs, model.labels)
    assert MELD_LABELS[int(meld.argmax())] == "joy"
    # the FER2013 model distinguishes inputs: a flat grey patch is not classified identically
    other = model.classify(np.full((1, 48, 48), 128, np.uint8))
    assert not np.allclose(other, probs)


@pytest.mark.parametrize("label_set", ["rafdb", "affectnet8"])
def test_ddamfn_authors_checkpoint_loads_and_runs(tmp_path, label_set):
    torch.manual_seed(0)
    n_class = len(DDAMFN_LABEL_SETS[label_set])
    net = ddamfn.DDAMFN(num_class=n_class, num_head=2)
    path = tmp_path / "ddamfn.pth"
    # the authors' training scripts save {'iter', 'model_state_dict', 'optimizer_state_dict'}
    torch.save({"iter": 3, "model_state_dict": net.state_dict(), "optimizer_state_dict": {}}, path)
    keys = set(net.state_dict())
    assert {"features.0.conv.weight", "features.2.conv_dw.mixed_depthwise_conv.2.weight",
            "features.3.model.8.CA.conv3.weight", "cat_head1.CoordAtt.Linear_h.conv.weight",
            "cat_head0.CoordAtt.Linear_w.bn.running_mean", "Linear.conv.weight", "fc.weight",
            "bn.running_var"} <= keys
    cfg = {**CFG, "name": "ddamfn", "ddamfn": {**CFG["ddamfn"], "weights": str(path), "label_set": label_set}}
    model = build_expression_model(cfg, torch.device("cpu"))
    frame, dets = _astronaut()
    crops = model.crops(frame, dets)
    assert crops.shape == (1, 112, 112, 3)
    probs = model.classify(np.concatenate([crops, crops[:, ::-1]]))
    assert probs.shape == (2, n_class)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    with torch.no_grad():  # same weights as saved
        x = torch.randn(1, 3, 112, 112)
        torch.testing.assert_close(model.net(x), net.eval()(x))
    assert to_meld(probs, model.labels).shape == (2, 7)


def test_ddamfn_wrong_checkpoints_fail_clearly(tmp_path):
    net = ddamfn.DDAMFN(7, 2)
    state = net.state_dict()
    plain = tmp_path / "plain.pth"
    torch.save(state, plain)  # no 'model_state_dict' wrapper
    with pytest.raises(ddamfn.DDAMFNCheckpointError, match="model_state_dict"):
        ddamfn.load_ddamfn(plain)
    renamed = tmp_path / "renamed.pth"
    bad = {k.replace("cat_head0.CoordAtt", "head0.att"): v for k, v in state.items()}
    torch.save({"model_state_dict": bad}, renamed)
    with pytest.raises(ddamfn.DDAMFNCheckpointError, match=r"missing keys \d+ \(cat_head0\.CoordAtt"):
        ddamfn.load_ddamfn(renamed)
    with pytest.raises(ddamfn.DDAMFNCheckpointError, match="has 7 classes, config expects 8"):
        ddamfn.load_ddamfn(renamed, num_class=8)
    with pytest.raises(FileNotFoundError):
        ddamfn.load_ddamfn(tmp_path / "absent.pth")


def test_ddamfn_shapes_follow_the_architecture():
    net = ddamfn.DDAMFN(7, 2).eval()
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        feat = net.features(x)
        assert feat.shape == (2, 512, 7, 7)
        att = net.cat_head0(feat)
        assert att.shape == (2, 512, 7, 7) and 0 <= att.min() and att.max() <= 1
        assert net(x).shape == (2, 7)


def test_label_mapping():
    assert label_map(DDAMFN_LABEL_SETS["affectnet8"])["Contempt"] == "disgust"
    assert set(label_map(FER2013_LABELS).values()) == set(MELD_LABELS)
    probs = np.eye(8, dtype=np.float32)[[7, 1]]
    meld = to_meld(probs, DDAMFN_LABEL_SETS["affectnet8"])
    assert [MELD_LABELS[i] for i in meld.argmax(1)] == ["disgust", "joy"]
    with pytest.raises(ValueError, match="no MELD emotion"):
        label_map(["Bored"])
