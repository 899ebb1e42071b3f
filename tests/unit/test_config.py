"""Config validation: the demo config passes; a wrong key or type is named in one message."""

import copy

import pytest
import yaml

from ecem.config import ConfigError, load_schema, validate_config
from tests.helpers import REPO, deep_merge

SCHEMAS = REPO / "workflow" / "schemas" / "config"


@pytest.fixture()
def demo_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_demo_config_is_valid(demo_config):
    validate_config(demo_config, SCHEMAS)


def test_every_section_has_a_schema_and_every_schema_a_section(demo_config):
    assert set(load_schema(SCHEMAS)["properties"]) == set(demo_config)


def test_misspelled_nested_key_is_named(demo_config):
    cfg = copy.deepcopy(demo_config)
    cfg["dataset"]["dedup"]["search_frame"] = cfg["dataset"]["dedup"].pop("search_frames")
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMAS)
    assert "'dataset.dedup.search_frame'" in str(err.value)


def test_unknown_top_level_section_is_named(demo_config):
    with pytest.raises(ConfigError, match="'datset'"):
        validate_config({**demo_config, "datset": {}}, SCHEMAS)


def test_wrong_type_is_named(demo_config):
    cfg = copy.deepcopy(demo_config)
    cfg["dataset"]["split"]["seed"] = "thirteen"
    with pytest.raises(ConfigError, match=r"dataset\.split\.seed.*integer"):
        validate_config(cfg, SCHEMAS)


def test_missing_required_key_is_reported(demo_config):
    cfg = copy.deepcopy(demo_config)
    del cfg["dataset"]["render"]["shards"]
    with pytest.raises(ConfigError, match="dataset.render.*shards"):
        validate_config(cfg, SCHEMAS)


def test_local_refs_resolve_inside_their_section(demo_config):
    cfg = copy.deepcopy(demo_config)
    cfg["meld"]["splits"] = {"train": {"csv": "train.csv"}}
    validate_config(cfg, SCHEMAS)
    cfg["meld"]["splits"] = {"train": {"cvs": "train.csv"}}
    with pytest.raises(ConfigError, match="'meld.splits.train.cvs'"):
        validate_config(cfg, SCHEMAS)


def test_paper_config_merged_over_the_demo_is_valid(demo_config):
    # Snakemake merges --configfile values over config.yaml; the result must validate.
    deep_merge(demo_config, yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))
    validate_config(demo_config, SCHEMAS)
    assert demo_config["demo"]["enabled"] is False and demo_config["transcribe"]["model"] == "large-v2"
