"""Code versions by content: what a workflow script runs, and only that."""

import shutil
from importlib import metadata

from ecem import provenance
from tests.helpers import REPO

SCRIPTS = REPO / "workflow" / "scripts"


def test_a_script_runs_its_entry_functions_modules_not_the_whole_stage():
    split = set(provenance.script_closure(SCRIPTS / "dataset_split.py"))
    render = set(provenance.script_closure(SCRIPTS / "dataset_render.py"))
    assert {"ecem.dataset.stage", "ecem.dataset.split", "ecem.logs", "ecem.artifacts"} <= split
    assert "ecem.dataset.render" not in split and "ecem.media" not in split
    assert {"ecem.dataset.render", "ecem.dataset.dedup", "ecem.media"} <= render
    assert "ecem.dataset.split" not in render
    # imports inside functions count (fame_examples reads texts through a local import)
    assert "ecem.text_policy" in provenance.script_closure(SCRIPTS / "fame_examples.py")


def test_code_version_follows_content_not_file_times(tmp_path):
    script = tmp_path / "dataset_split.py"
    shutil.copy(SCRIPTS / "dataset_split.py", script)
    before = provenance.code_version(script)
    script.touch()
    assert provenance.code_version(script) == before
    script.write_text(script.read_text() + "\n# an edit\n")
    assert provenance.code_version(script) != before


def test_code_hashes_cover_the_whole_closure_of_a_module():
    hashes = provenance.code_hashes(["ecem.fame.stage"])
    assert {"ecem", "ecem.fame", "ecem.fame.stage", "ecem.fame.train", "ecem.tokens"} <= set(hashes)
    assert all(len(h) == 64 for h in hashes.values())


def test_installed_version_names_an_installed_distribution_and_none_otherwise():
    assert provenance.installed_version("pyyaml") == metadata.version("pyyaml")
    assert provenance.installed_version("no-such-distribution-ecem") is None
    versions = provenance.package_versions(["pyyaml", "no-such-distribution-ecem"])
    assert versions["no-such-distribution-ecem"] == "absent" and "python" in versions
