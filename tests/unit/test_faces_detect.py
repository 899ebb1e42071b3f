"""Face detectors on real photographs rendered the demo corpus' way (scikit-image faces)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecem.corpus.scene import FacePlan, face_box, render_frame
from ecem.faces.detect import Detections, anchor_priors, build_detector, postprocess
from ecem.faces.track import box_iou

W, H = 320, 240
ONE = [FacePlan(x_phase=0.17, y=H * 0.45, speed_px=3.0, scale=0.62)]
TWO = ONE + [FacePlan(x_phase=0.67, y=H * 0.45, speed_px=2.0, scale=0.55, mirrored=True)]

MTCNN_CFG = {"name": "mtcnn", "score_threshold": 0.9, "nms_iou": 0.4, "min_face_px": 20,
             "mtcnn": {"thresholds": [0.6, 0.7, 0.7], "factor": 0.709, "min_pyramid_face_px": 40},
             "retinaface": {"weights": None, "url": None, "max_size": 320, "top_k": 100}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frames(plans, indices, background=3):
    frames = np.stack([render_frame(background, plans, i, W, H) for i in indices])
    boxes = [[face_box(p, i, W, H) for p in plans] for i in indices]
    return frames, boxes


def _separated(plans, n):
    """Frame indices where the planted faces do not overlap (no occlusion)."""
    out = []
    for i in range(2000):
        b = [face_box(p, i, W, H) for p in plans]
        if len(b) < 2 or box_iou(np.array(b[:1]), np.array(b[1:]))[0, 0] == 0:
            out.append(i)
        if len(out) == n:
            return out
    raise AssertionError("no separated frames")


@pytest.fixture(scope="module")
def mtcnn():
    return build_detector(MTCNN_CFG, torch.device("cpu"))


def test_mtcnn_finds_planted_faces_and_nothing_else(mtcnn):
    frames1, truth1 = _frames(ONE, [100, 131, 177])
    idx2 = _separated(TWO, 3)
    frames2, truth2 = _frames(TWO, idx2, background=5)
    empty = np.stack([render_frame(b, [], 0, W, H) for b in (0, 7, 9)])
    dets = mtcnn.detect(np.concatenate([frames1, frames2, empty]))
    assert len(dets) == 9
    for det, truth in zip(dets[:6], truth1 + truth2):
        assert len(det) == len(truth)
        iou = box_iou(np.array(truth), det.boxes)
        assert iou.max(axis=1).min() >= 0.5  # every planted face matched
        assert det.boxes.dtype == np.float32 and det.landmarks.shape == (len(truth), 5, 2)
        assert (det.scores >= 0.9).all()
        # landmarks fall inside their boxes (eyes above mouth)
        for box, lm in zip(det.boxes, det.landmarks):
            assert (lm[:, 0] >= box[0] - 2).all() and (lm[:, 0] <= box[2] + 2).all()
            assert lm[:2, 1].mean() < lm[3:, 1].mean()
    for det in dets[6:]:
        assert len(det) == 0


def test_postprocess_threshold_min_size_and_nms():
    boxes = np.array([[10, 10, 60, 60], [12, 12, 62, 62], [100, 100, 110, 110], [200, 50, 260, 110]], np.float32)
    scores = np.array([0.95, 0.99, 0.99, 0.5], np.float32)
    det = postprocess(boxes, scores, np.zeros((4, 5, 2)), 320, 240, score_threshold=0.9, min_face_px=20,
                      nms_iou=0.4)
    assert len(det) == 1  # NMS keeps the higher-scored twin, small face and low score dropped
    np.testing.assert_allclose(det.boxes[0], boxes[1])
    assert len(postprocess(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)), 320, 240, 0.5, 0, 0.4)) == 0
    assert isinstance(Detections.empty(), Detections)


def test_anchor_priors_layout():
    pri = anchor_priors(240, 320)
    # three levels (strides 8, 16, 32), two anchor sizes per cell
    assert pri.shape == ((30 * 40 + 15 * 20 + 8 * 10) * 2, 4)
    np.testing.assert_allclose(pri[0].numpy(), [4 / 320, 4 / 240, 16 / 320, 16 / 240], rtol=1e-6)
    np.testing.assert_allclose(pri[1, 2:].numpy(), [32 / 320, 32 / 240], rtol=1e-6)


def test_retinaface_loads_configured_weights_and_runs(tmp_path):
    from retinaface.network import RetinaFace

    torch.manual_seed(0)
    net = RetinaFace(name="Resnet50", pretrained=False, in_channels=256, out_channels=256,
                     return_layers={"layer2": 1, "layer3": 2, "layer4": 3})
    path = tmp_path / "retinaface_random.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # DataParallel prefix
    cfg = {**MTCNN_CFG, "name": "retinaface", "score_threshold": 0.5,
           "retinaface": {**MTCNN_CFG["retinaface"], "weights": str(path)}}
    det = build_detector(cfg, torch.device("cpu"))
    frames, _ = _frames(ONE, [100, 101])
    out = det.detect(frames)
    assert len(out) == 2
    for d in out:  # random weights: any number of faces, but well-formed and post-processed
        assert d.boxes.shape == (len(d), 4) and d.landmarks.shape == (len(d), 5, 2)
        assert len(d) <= cfg["retinaface"]["top_k"]
        assert (d.scores >= 0.5).all() and (d.boxes[:, [0, 2]] <= W).all() and (d.boxes[:, [1, 3]] <= H).all()
        if len(d) > 1:
            assert box_iou(d.boxes, d.boxes)[np.triu_indices(len(d), 1)].max() <= 0.4 + 1e-6


def test_retinaface_needs_weights_and_rejects_wrong_ones(tmp_path):
    cfg = {**MTCNN_CFG, "name": "retinaface"}
    with pytest.raises(ValueError, match="needs `weights`"):
        build_detector(cfg, torch.device("cpu"))
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="missing keys"):
        build_detector({**cfg, "retinaface": {**cfg["retinaface"], "weights": str(bad)}}, torch.device("cpu"))


def test_weights_from_release_style_zip(tmp_path):
    import zipfile

    from ecem.faces.detect import load_state_dict_file

    inner = tmp_path / "retinaface_resnet50.pth"
    torch.save({"module.fc.weight": torch.ones(2, 2)}, inner)
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(inner, inner.name)
    state = load_state_dict_file(archive)
    assert list(state) == ["fc.weight"] and torch.equal(state["fc.weight"], torch.ones(2, 2))
    assert list(load_state_dict_file(inner)) == ["fc.weight"]
