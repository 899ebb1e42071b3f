"""The evaluate/baselines config sections: the demo config validates; mistakes name the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from ecem.config import ConfigError, validate_config
from tests.helpers import REPO

SCHEMAS = REPO / "workflow" / "schemas" / "config"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_demo_config_is_valid_and_gpu_baselines_validate(config):
    validate_config(config, SCHEMAS)
    c = copy.deepcopy(config)
    c["baselines"]["zs"] = {"kind": "zero_shot", "model": "lmsys/vicuna-7b-v1.5", "prompt": "{utterance}",
                            "max_new_tokens": 32, "device": "cuda"}
    c["baselines"]["vid"] = {"kind": "video_llm", "model": "MBZUAI/Video-ChatGPT-7B"}
    validate_config(c, SCHEMAS)


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["baselines"]["template"].update(templat="x"), "baselines.template.templat"),
    (lambda c: c["baselines"]["retrieval"].pop("same_emotion"), "same_emotion"),
    (lambda c: c["baselines"].update(x={"kind": "oracle"}), "baselines.x.kind"),
    (lambda c: c["evaluate"]["bootstrap"].update(resamples="many"), "evaluate.bootstrap.resamples"),
    (lambda c: c["evaluate"].update(splits=["dev"]), "evaluate.splits"),
    (lambda c: c["evaluate"]["sem_sim"].update(pooling="max"), "evaluate.sem_sim.pooling"),
])
def test_mistakes_name_the_key(config, mutate, message):
    c = copy.deepcopy(config)
    mutate(c)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_config(c, SCHEMAS)
