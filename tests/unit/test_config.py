"""Config validation: the demo config passes; a wrong key or type is named in one message."""

import copy

import pytest
import yaml

from ecem.config import ConfigError, config_slice, load_schema, validate_config
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


def test_validation_fills_schema_defaults_where_a_key_is_left_out(demo_config):
    cfg = copy.deepcopy(demo_config)
    for key in ("style", "system", "batch_size"):
        del cfg["baselines"]["zero_shot"][key]
    del cfg["experiments"]["V+T+E+A"]["audio"]
    validate_config(cfg, SCHEMAS)
    assert {k: cfg["baselines"]["zero_shot"][k] for k in ("style", "system", "batch_size")} == {
        "style": "plain", "system": None, "batch_size": 8}
    assert "device" not in cfg["baselines"]["retrieval"]  # no schema default: left as written
    assert "audio" not in cfg["experiments"]["V+T+E+A"]  # likewise (ecem.modalities holds it)
    assert "batch_size" not in cfg["baselines"]["template"]  # another kind's `then` branch


SECTION = """
$schema: "https://json-schema.org/draft/2020-12/schema"
type: object
additionalProperties: false
properties:
  nested:
    type: object
    additionalProperties: false
    properties:
      depth: {type: integer, default: 2}
      tags: {type: array, default: []}
  named:
    type: object
    additionalProperties:
      type: object
      properties:
        enabled: {type: boolean, default: true}
  patterned:
    type: object
    patternProperties:
      "^x": {type: object, properties: {size: {type: integer, default: 1}}}
  kinds:
    type: object
    additionalProperties:
      type: object
      properties:
        kind: {enum: [a, b]}
      allOf:
        - if: {properties: {kind: {const: a}}}
          then: {properties: {only_a: {type: string, default: "A"}}}
"""


@pytest.fixture()
def schema_dir(tmp_path):
    (tmp_path / "section.schema.yaml").write_text(SECTION)
    return tmp_path


def test_defaults_fill_nested_objects_maps_and_matching_branches(schema_dir):
    cfg = {"section": {"nested": {}, "named": {"one": {}, "two": {"enabled": False}},
                       "patterned": {"x1": {}, "y1": {}}, "kinds": {"p": {"kind": "a"}, "q": {"kind": "b"}}}}
    validate_config(cfg, schema_dir)
    section = cfg["section"]
    assert section["nested"] == {"depth": 2, "tags": []}
    assert section["named"] == {"one": {"enabled": True}, "two": {"enabled": False}}  # a given value stays
    assert section["patterned"] == {"x1": {"size": 1}, "y1": {}}
    assert section["kinds"] == {"p": {"kind": "a", "only_a": "A"}, "q": {"kind": "b"}}


def test_filled_defaults_are_copies_and_absent_parents_stay_absent(schema_dir):
    first, second = {"section": {"nested": {}}}, {"section": {"nested": {}}}
    validate_config(first, schema_dir)
    validate_config(second, schema_dir)
    first["section"]["nested"]["tags"].append("x")
    assert second["section"]["nested"]["tags"] == []
    empty: dict = {"section": {}}
    validate_config(empty, schema_dir)
    assert empty == {"section": {}}  # an object the config leaves out is not created


def test_a_wrong_value_is_still_named_next_to_a_filled_default(schema_dir):
    cfg = {"section": {"nested": {"depth": "deep"}}}
    with pytest.raises(ConfigError, match=r"section\.nested\.depth"):
        validate_config(cfg, schema_dir)


def test_config_slice_keeps_the_given_keys_in_the_given_order():
    section = {"a": 1, "b": {"x": 2}, "c": 3}
    sliced = config_slice(section, ("c", "a"))
    assert sliced == {"c": 3, "a": 1} and list(sliced) == ["c", "a"]
    assert config_slice(section, ()) == {}
    assert config_slice(section, iter(["b"])) == {"b": {"x": 2}}  # any iterable of keys
    sliced["c"] = 99
    assert section["c"] == 3  # a new dict: the rule's params never alias the config's top level
    with pytest.raises(KeyError, match="missing"):
        config_slice(section, ("a", "missing"))
