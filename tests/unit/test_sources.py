"""Where inputs come from, which folders rules may write, and how models are named."""

import pytest
import yaml

from ecem import model_refs, sources
from tests.helpers import REPO


@pytest.fixture()
def cfg(tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)  # relative config paths are taken from the working directory
    return yaml.safe_load((REPO / "config.yaml").read_text())


def _meld(root):
    for split, videos in (("train", "train_splits"), ("dev", "dev_splits_complete"),
                          ("test", "output_repeated_splits_test")):
        (root / videos).mkdir(parents=True)
        (root / f"{split}_sent_emo.csv").write_text("x\n")


def test_within_and_owned_compare_normalised_paths(tmp_path, cfg):
    assert sources.is_within("resources/demo/MELD.Raw", "resources/demo")
    assert not sources.is_within("resources/demo/../MELD.Raw", "resources/demo")
    assert not sources.is_within("resources/demo-old", "resources/demo")
    assert sources.owned("results/x.parquet") and sources.owned(tmp_path / "resources/models/m")
    assert not sources.owned("resources/MELD.Raw") and not sources.owned("/data/x")


def test_users_meld_root_is_read_and_never_downloaded_over(tmp_path, cfg):
    cfg["demo"]["enabled"] = False
    cfg["meld"]["download"]["url"] = "https://example.org/MELD.Raw.tar.gz"
    cfg["meld"]["root"] = "data/MELD.Raw"
    _meld(tmp_path / "data/MELD.Raw")
    assert sources.meld_source(cfg) == sources.Source("data/MELD.Raw", download=False)
    (tmp_path / "data/MELD.Raw/dev_sent_emo.csv").unlink()  # incomplete: still the user's
    assert sources.meld_source(cfg) == sources.Source("data/MELD.Raw", download=False)
    # a missing input is an error of the rules that read it only, naming its key and the targets
    with pytest.raises(sources.MissingInput, match=r"config key 'meld.splits.dev.csv': 'data/MELD.Raw/dev_sent_emo"
                                                   r".csv' does not exist \(needed for results/x.json\)"):
        sources.checked_inputs(cfg, "csvs", ["results/x.json"])
    with pytest.raises(sources.MissingInput, match="config key 'ecem.annotations'.*the default target"):
        sources.checked_inputs(cfg, "annotations")
    assert sources.checked_inputs(cfg, "videos") == [f"data/MELD.Raw/{d}" for d in (
        "train_splits", "dev_splits_complete", "output_repeated_splits_test")]


def test_absent_root_with_url_downloads_into_the_cache_once(tmp_path, cfg):
    cfg["demo"]["enabled"] = False
    cfg["meld"]["download"]["url"] = "https://example.org/MELD.Raw.tar.gz"
    cfg["meld"]["root"] = "data/MELD.Raw"
    assert sources.meld_source(cfg) == sources.Source(sources.MELD_CACHE, download=True)
    _meld(tmp_path / sources.MELD_CACHE)
    assert sources.meld_source(cfg) == sources.Source(sources.MELD_CACHE, download=False)
    cfg["ecem"]["annotations"] = "/nowhere/ecem.json"
    cfg["ecem"]["download"]["url"] = "https://example.org/ecem.json"
    assert sources.ecem_source(cfg) == sources.Source("resources/downloads/ECEM/ecem.json", True)


def test_rule_outputs_outside_owned_folders_or_on_user_inputs_are_named(tmp_path, cfg):
    cfg["demo"]["enabled"] = False
    cfg["meld"]["root"] = "resources/downloads/MELD.Raw"  # a user copy inside an owned folder
    cfg["fame"]["llm"] = str(tmp_path / "my-llm")
    outputs = [("ok", "results/x.parquet"), ("stray", "resources/MELD.Raw/x.csv"),
               ("clobber", "resources/downloads/MELD.Raw/train_sent_emo.csv"),
               ("model", str(tmp_path / "my-llm"))]
    problems = sources.check_rule_outputs(outputs, cfg)
    by_rule = {rule: [p for p in problems if p.startswith(f"rule {rule} ")] for rule, _ in outputs}
    assert by_rule["ok"] == []
    assert by_rule["stray"] == [p for p in problems if "'resources/MELD.Raw/x.csv', outside" in p]
    assert ["'meld.root'" in p for p in by_rule["clobber"]] == [True, False]
    assert "'meld.splits.train.csv'" in by_rule["clobber"][1]
    assert "outside" in by_rule["model"][0] and "'fame.llm'" in by_rule["model"][1]
    assert sum(map(len, by_rule.values())) == len(problems) == 5


@pytest.mark.parametrize("ref,path_like", [
    ("lmsys/vicuna-7b-v1.5", False), ("roberta-large", False), ("bundled:tiny.en", False),
    ("/models/x", True), ("./x", True), ("~/x", True), ("resources/models/x", True),
])
def test_looks_like_path(ref, path_like):
    assert model_refs.looks_like_path(ref) is path_like


def test_random_refs_live_in_resources_models():
    assert model_refs.is_random("random:tiny-llama")
    assert model_refs.location("random:tiny-llama") == "resources/models/tiny-llama"
    assert model_refs.local_input("random:tiny-llama") == ["resources/models/tiny-llama"]
    assert model_refs.local_input("lmsys/vicuna-7b-v1.5") == []
    with pytest.raises(ValueError):
        model_refs.built_model_dir("random:a/b")
