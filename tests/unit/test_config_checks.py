"""What the schema cannot say: each problem stops the run with one line naming its key."""

import copy

import pytest
import yaml

from ecem.config import ConfigError, check_config, config_problems
from tests.helpers import REPO, deep_merge

SCHEMAS = REPO / "workflow" / "schemas" / "config"


@pytest.fixture()
def cfg() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_demo_config_has_no_problems(cfg):
    assert config_problems(cfg) == []


def test_paper_config_problems_are_only_its_absent_local_weights(cfg):
    deep_merge(cfg, yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))
    problems = config_problems(cfg)
    assert problems and all("local model path" in p and "does not exist" in p for p in problems)
    assert {p.split("'")[1] for p in problems} == {
        "fame.projector.init", "features.faces.expression.ddamfn.weights"}


def test_split_ratios_must_sum_to_one(cfg):
    cfg["dataset"]["split"]["ratios"] = {"train": 1, "val": 1, "test": 1}
    with pytest.raises(ConfigError, match=r"'dataset.split.ratios'.* sum to 3, not 1"):
        check_config(cfg, SCHEMAS)
    cfg["dataset"]["split"]["ratios"] = {"train": 0.7, "val": 0.2, "test": 0.1}
    check_config(cfg, SCHEMAS)  # float rounding is fine


@pytest.mark.parametrize("key,edit", [
    ("meld.root", {"meld": {"root": "/data/MELD.Raw"}}),
    ("ecem.annotations", {"ecem": {"annotations": "ecem.json"}}),
    ("meld.splits.train.videos", {"meld": {"splits": {"train": {"videos": "../../clips"}}}}),
    ("demo.truth", {"demo": {"truth": "results/truth.json"}}),
])
def test_demo_on_with_an_input_outside_resources_demo_names_the_key(cfg, key, edit):
    deep_merge(cfg, edit)
    with pytest.raises(ConfigError, match=f"'{key}'.*outside resources/demo/.*demo.enabled: false"):
        check_config(cfg, SCHEMAS)
    cfg["demo"]["enabled"] = False
    assert not [p for p in config_problems(cfg) if "resources/demo" in p]


def test_missing_local_model_path_is_an_error_and_a_hub_id_is_not(cfg, tmp_path):
    cfg["fame"]["llm"] = str(tmp_path / "vicuna-7b")
    with pytest.raises(ConfigError, match=r"'fame.llm': local model path .* does not exist"):
        check_config(cfg, SCHEMAS)
    (tmp_path / "vicuna-7b").mkdir()
    check_config(cfg, SCHEMAS)
    cfg["fame"]["llm"] = "lmsys/vicuna-7b-v1.5"
    check_config(cfg, SCHEMAS)
    cfg["features"]["faces"]["expression"]["ddamfn"]["weights"] = "models/ddamfn/x.pth"
    with pytest.raises(ConfigError, match="'features.faces.expression.ddamfn.weights'"):
        check_config(cfg, SCHEMAS)


def test_random_models_need_their_settings_and_only_where_they_exist(cfg):
    bad = copy.deepcopy(cfg)
    bad["fame"]["llm"] = "random:tiny-llama"
    check_config(bad, SCHEMAS)
    bad["fame"]["tiny_llm"] = None
    with pytest.raises(ConfigError, match="'fame.llm' is 'random:tiny-llama' but 'fame.tiny_llm' is null"):
        check_config(bad, SCHEMAS)
    bad = copy.deepcopy(cfg)
    bad["evaluate"]["sem_sim"]["model"] = "random:minilm"
    with pytest.raises(ConfigError, match="'evaluate.sem_sim.model'.*only"):
        check_config(bad, SCHEMAS)
    bad = copy.deepcopy(cfg)
    bad["fame"]["llm"] = "random:../../home"
    with pytest.raises(ConfigError, match="plain directory name"):
        check_config(bad, SCHEMAS)


@pytest.mark.parametrize("key,value,match", [
    ("fame.llm", "bundled:dinov2-vits14", "is a vision model, not a causal_lm model"),
    ("features.clip.model", "bundled:smollm2-135m-instruct", "is a causal_lm model, not a vision model"),
    ("features.clip.model", "bundled:clip-vit-l14", "not a bundled model it can use .*bundled:dinov2-vits14"),
    ("evaluate.sem_sim.model", "bundled:smollm2-135m-instruct", "not a bundled model it can use"),
    ("fame.llm", "bundled:", "plain directory name"),
    ("features.audio.model", "bundled:large-v2", "not a bundled Whisper model .*bundled:tiny.en"),
    ("features.audio.model", "random:tiny-audio", "only .* can be a generated random model"),
])
def test_bundled_models_must_exist_and_fit_the_key(cfg, key, value, match):
    section, *rest = key.split(".")
    node = cfg[section]
    for k in rest[:-1]:
        node = node[k]
    node[rest[-1]] = value
    with pytest.raises(ConfigError, match=f"'{key}'.*{match}"):
        check_config(cfg, SCHEMAS)


def test_bundled_models_of_the_demo_are_valid_where_they_are_used(cfg):
    assert cfg["fame"]["llm"] == "bundled:smollm2-135m-instruct"
    assert cfg["features"]["clip"]["model"] == "bundled:dinov2-vits14"
    assert cfg["baselines"]["zero_shot"]["model"] == "bundled:smollm2-135m-instruct"
    check_config(cfg, SCHEMAS)


@pytest.mark.parametrize("modalities,match", [
    ({"video": False, "text": False, "face": False}, "no input modality"),
    ({"video": False, "text": True, "face": True}, "would get no gradient"),
])
def test_experiments_with_nothing_to_train_are_rejected(cfg, modalities, match):
    cfg["experiments"]["T+E"] = {**cfg["experiments"]["V+T+E"], **modalities}
    with pytest.raises(ConfigError, match=f"'experiments.T\\+E'.*{match}"):
        check_config(cfg, SCHEMAS)
    if modalities["text"]:  # trainable LLM parameters make a text-only experiment trainable
        cfg["fame"]["trainable"] = ["projector.*", "llm.lm_head.*"]
        check_config(cfg, SCHEMAS)


def test_an_audio_experiment_without_video_trains_its_audio_projector(cfg):
    cfg["experiments"]["T+E+A"] = {**cfg["experiments"]["V+T+E"], "video": False, "audio": True}
    check_config(cfg, SCHEMAS)  # "audio_projector.*" is trainable in the demo config
    cfg["fame"]["trainable"] = ["projector.*"]
    with pytest.raises(ConfigError, match="'experiments.T\\+E\\+A'.*would get no gradient"):
        check_config(cfg, SCHEMAS)
    cfg["experiments"]["T+E+A"]["audio"] = "yes"
    with pytest.raises(ConfigError, match="audio"):
        check_config(cfg, SCHEMAS)
