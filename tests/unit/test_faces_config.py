"""The features.faces config section: the demo config validates, mistakes name their key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ecem.config import ConfigError, validate_config

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "workflow" / "schemas" / "config"


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_demo_faces_config_is_offline_and_valid(config):
    validate_config(config, SCHEMAS)
    faces = config["features"]["faces"]
    assert faces["detector"]["name"] == "mtcnn" and faces["expression"]["name"] == "fer2013"
    assert faces["detector"]["retinaface"]["url"] is None  # nothing is downloaded by the demo


@pytest.mark.parametrize("path, value, message", [
    (("detector", "name"), "yolo", "features.faces.detector.name"),
    (("expression", "ddamfn", "label_set"), "fer", "features.faces.expression.ddamfn.label_set"),
    (("summary", "no_face_emotion"), "happy", "features.faces.summary.no_face_emotion"),
    (("track", "max_gap"), 1.0, "features.faces.track.max_gap"),
])
def test_wrong_faces_keys_are_named(config, path, value, message):
    cfg = copy.deepcopy(config)
    node = cfg["features"]["faces"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_config(cfg, SCHEMAS)
