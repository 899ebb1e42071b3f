"""A user's inputs are never outputs: sentinel files survive the demo, the download rules
(offline, and after a download), the model rules and old file times, byte for byte."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.helpers import parse_job_stats, planned_jobs, run_snakemake, write_config

pytestmark = pytest.mark.integration

OLD = 1577836800  # 2020-01-01: older than every file of the workflow and of the package


def digest(root: Path) -> dict[str, str]:
    """Every file under `root` (or `root` itself) → SHA-256 of its bytes."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def age(root: Path) -> None:
    """`touch -d 2020-01-01` on everything under `root`."""
    for p in [root, *root.rglob("*")]:
        os.utime(p, (OLD, OLD))


@pytest.fixture()
def user_meld(demo_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A user's own MELD.Raw and ECEM JSON (copies of the demo's) with a stray note, aged."""
    root = tmp_path / "user" / "MELD.Raw"
    shutil.copytree(demo_run / "resources/demo/MELD.Raw", root)
    (root / "train_splits" / "NOTES.txt").write_text("my notes\n")
    annotations = tmp_path / "user" / "ecem.json"
    shutil.copy(demo_run / "resources/demo/ecem_annotations.json", annotations)
    age(tmp_path / "user")
    return root, annotations


@pytest.mark.parametrize("key", ["meld.root", "ecem.annotations"])
def test_demo_stops_before_touching_an_input_pointed_elsewhere(tmp_path, user_meld, key):
    root, annotations = user_meld
    before = digest(tmp_path / "user")
    section, name = key.split(".")
    edit = {section: {name: str(root if key == "meld.root" else annotations)}}
    work = tmp_path / "work"
    work.mkdir()
    proc = run_snakemake(work, "--configfile", str(write_config(work / "c.yaml", edit)), check=False)
    assert proc.returncode != 0
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "Invalid configuration" in line]
    assert len(errors) == 1 and f"config key '{key}'" in errors[0] and "demo.enabled: false" in errors[0]
    assert digest(tmp_path / "user") == before
    assert not (work / "results").exists() and not (work / "resources").exists()


def test_users_old_meld_is_read_never_downloaded_over(tmp_path, user_meld):
    root, annotations = user_meld
    before = digest(tmp_path / "user")
    url = (tmp_path / "offline" / "MELD.Raw.tar.gz").as_uri()  # nothing there: offline
    config = write_config(tmp_path / "c.yaml", {
        "demo": {"enabled": False},
        "meld": {"root": str(root), "download": {"url": url, "sha256": None}},
        "ecem": {"annotations": str(annotations), "download": {"url": url, "sha256": None}}})
    work = tmp_path / "work"
    work.mkdir()
    jobs = planned_jobs(work, "results/ecem/annotations.parquet", "--configfile", str(config))
    assert jobs and not {"download_meld", "download_ecem"} & set(jobs)
    run_snakemake(work, "results/ecem/annotations.parquet", "--configfile", str(config))
    assert digest(tmp_path / "user") == before
    # One CSV gone: the run says which (and which target needed it), and nothing else is touched.
    (root / "dev_sent_emo.csv").unlink()
    del before["user/MELD.Raw/dev_sent_emo.csv"]
    proc = run_snakemake(work, "results/ecem/annotations.parquet", "--configfile", str(config), check=False)
    assert proc.returncode != 0
    assert ("Missing input: config key 'meld.splits.dev.csv'" in proc.stdout + proc.stderr
            and "needed for results/ecem/annotations.parquet" in proc.stdout + proc.stderr)
    assert digest(tmp_path / "user") == before


def test_download_fills_the_project_cache_once(tmp_path, demo_run):
    archive = tmp_path / "mirror" / "MELD.Raw.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(demo_run / "resources/demo/MELD.Raw", arcname="MELD.Raw")
    annotations = tmp_path / "mirror" / "ecem.json"
    shutil.copy(demo_run / "resources/demo/ecem_annotations.json", annotations)
    before = digest(tmp_path / "mirror")
    config = write_config(tmp_path / "c.yaml", {
        "demo": {"enabled": False},
        "meld": {"root": str(tmp_path / "absent" / "MELD.Raw"),
                 "download": {"url": archive.as_uri(), "sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}},
        "ecem": {"annotations": str(annotations)}})
    work = tmp_path / "work"
    work.mkdir()
    target = ("results/ecem/resolved.parquet", "--configfile", str(config))
    proc = run_snakemake(work, *target)
    assert "download_meld" in parse_job_stats(proc.stdout + proc.stderr)
    cache = work / "resources/downloads/MELD.Raw"
    assert (cache / "train_splits/dia0_utt1.mp4").is_file()
    assert not (tmp_path / "absent").exists() and digest(tmp_path / "mirror") == before
    age(cache)  # older than the download script: still never rerun
    assert planned_jobs(work, "--forceall", *target).keys() == {"resolve_annotations"}


def test_a_users_model_directory_is_never_a_rule_output(tmp_path):
    llm, clip = tmp_path / "user" / "llm", tmp_path / "user" / "clip"
    for model in (llm, clip):
        model.mkdir(parents=True)
        (model / "config.json").write_text('{"sentinel": true}')
        (model / "model.safetensors").write_bytes(b"\x00sentinel weights\x01" * 64)
    age(tmp_path / "user")
    before = digest(tmp_path / "user")
    work = tmp_path / "work"
    work.mkdir()
    for llm_ref in (str(llm), "lmsys/vicuna-7b-v1.5"):
        config = write_config(work / "c.yaml", {"fame": {"llm": llm_ref},
                                                "features": {"clip": {"model": str(clip)}}})
        jobs = planned_jobs(work, "--forceall", "--configfile", str(config))
        assert "fame_train" in jobs and not {"tiny_llm", "build_tiny_clip"} & set(jobs)
    assert digest(tmp_path / "user") == before
    assert not (work / "lmsys").exists()


def test_an_offline_download_fails_clearly_and_writes_only_its_cache(tmp_path, user_meld):
    _, annotations = user_meld
    before = digest(tmp_path / "user")
    config = write_config(tmp_path / "c.yaml", {
        "demo": {"enabled": False},
        "meld": {"root": str(tmp_path / "absent" / "MELD.Raw"),
                 "download": {"url": (tmp_path / "offline" / "MELD.Raw.tar.gz").as_uri(), "sha256": None}},
        "ecem": {"annotations": str(annotations)}})
    work = tmp_path / "work"
    work.mkdir()
    proc = run_snakemake(work, "results/ecem/resolved.parquet", "--configfile", str(config), check=False)
    assert proc.returncode != 0
    assert "could not download" in proc.stdout + proc.stderr and "place it at" in proc.stdout + proc.stderr
    written = {p.relative_to(work).parts[:2] for p in work.rglob("*") if p.is_file()}
    assert written <= {("resources", "downloads"), ("results", "logs"), (".snakemake", "log"),
                       (".snakemake", "metadata"), (".snakemake", "incomplete")}, written
    assert not (tmp_path / "absent").exists() and digest(tmp_path / "user") == before
