"""Re-run semantics, proven on real runs: config edits, package-code edits, and killed jobs.

* A config edit plans exactly the stage that owns the edited key and the stages downstream of it
  (rule graph), nothing upstream or beside it (`snakemake -n` on the complete `demo_run`).
* A package-code edit reruns exactly the jobs whose code it changes (each rule's `params.code`,
  a content digest, ecem.provenance), and new file times alone (a checkout, a fresh clone) rerun
  nothing. The repository's source is never touched: a sandbox copy of the workflow and of
  `src/` runs with the copy first on PYTHONPATH, and the copy is edited.
* A job SIGKILLed mid-write (the whole snakemake process group, like a node failure) leaves no
  artifact that a rerun trusts: final Parquet files never appear half-written (atomic writes), the
  job is recorded as incomplete, the next run redoes it, and its outputs equal an uninterrupted
  run's.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from ecem.artifacts import read_table
from tests.helpers import REPO, SNAKEMAKE, copy_run, parse_job_stats, planned_jobs, run_snakemake, write_config

pytestmark = pytest.mark.integration

DATASET_TARGET = "results/ecem/quality.json"


# ----------------------------------------------------------------------------- helpers
def rule_graph(workdir: Path) -> dict[str, set[str]]:
    """{rule: rules that consume its outputs}, from `snakemake --rulegraph` (dot)."""
    dot = run_snakemake(workdir, "--rulegraph").stdout
    names = dict(re.findall(r"^\s*(\d+)\[label = \"(\w+)\"", dot, flags=re.M))
    graph: dict[str, set[str]] = {name: set() for name in names.values()}
    for src, dst in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M):
        graph[names[src]].add(names[dst])
    return graph


def downstream(graph: dict[str, set[str]], rules: set[str]) -> set[str]:
    seen, todo = set(rules), list(rules)
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def dry_run(workdir: Path, *args: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """One dry run: {rule: planned jobs} and the (rule, reason) of every planned job."""
    out = run_snakemake(workdir, "-n", *args).stdout
    reasons = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    reason: (.*)$", out, flags=re.M)
    return parse_job_stats(out), reasons


def full_counts(workdir: Path) -> dict[str, int]:
    """Job count of every rule in the complete workflow (forced dry run)."""
    return planned_jobs(workdir, "--forceall")


# ------------------------------------------------------------------- config edits (demo_run)
@pytest.fixture(scope="module")
def graph(demo_run):
    return rule_graph(demo_run)


@pytest.fixture(scope="module")
def counts(demo_run):
    return full_counts(demo_run)


def test_complete_run_plans_nothing(demo_run):
    assert planned_jobs(demo_run) == {}


@pytest.mark.parametrize("edit, owners, followers", [
    # DESIGN §3's example: editing features.clip.num_frames reruns the video features and what
    # depends on them (FAME-Net), and nothing else (not ASR, faces, rendering or the models)
    ({"features": {"clip": {"num_frames": 50}}}, {"clip_features_shard"}, {"clip_features", "fame_train"}),
    ({"transcribe": {"beam_size": 4}}, {"transcribe_shard"}, {"gather_transcripts", "transcribe_quality"}),
    ({"dataset": {"dedup": {"search_frames": 2}}}, {"render_clips"}, {"gather_clips"}),
    ({"features": {"audio": {"num_tokens": 4}}}, {"audio_features_shard"}, {"audio_features"}),
], ids=["features.clip.num_frames", "transcribe.beam_size", "dataset.dedup.search_frames",
        "features.audio.num_tokens"])
def test_config_edit_plans_exactly_its_stage_and_dependants(demo_run, tmp_path, graph, counts,
                                                            edit, owners, followers):
    cfg = write_config(tmp_path / "edited.yaml", edit)
    jobs, reasons = dry_run(demo_run, "--configfile", str(cfg))
    allowed = downstream(graph, owners) | {"all"}
    assert set(jobs) - allowed == set(), f"planned outside the edited stage's subgraph: {jobs}"
    assert followers <= set(jobs), jobs
    for rule in owners:  # every job of the owning rule (every shard) reruns
        assert jobs.get(rule) == counts[rule], jobs
    # Upstream and sibling stages are untouched, e.g. the corpus and dataset probing.
    assert {"demo_corpus", "resolve_annotations", "probe_utterances"}.isdisjoint(jobs)
    # The params trigger fires for exactly the owners; every other planned job only follows
    # updated input. (`--list-changes params` is not used: in Snakemake 9.27 it lists every output
    # with recorded params, changed or not.)
    assert {rule for rule, why in reasons if "Params have changed" in why} == owners, reasons
    assert all("Params have changed" in why or "Input files updated by another job" in why
               for rule, why in reasons), reasons


# ------------------------------------------------------- sandbox: code edits and killed jobs
def _copy_repo(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake")
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("workflow", "profiles", "src", "envs"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, dest / name, ignore=ignore)
    return dest


def sandbox_env(repo: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join([str(repo / "src"), os.environ.get("PYTHONPATH", "")])}


def sandbox_cmd(sandbox: dict, *args: str) -> list[str]:
    return [SNAKEMAKE, "-s", str(sandbox["repo"] / "Snakefile"), "-d", str(sandbox["workdir"]),
            "--cores", "2", *args]


def run_sandbox(sandbox: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(sandbox_cmd(sandbox, *args), capture_output=True, text=True,
                          env=sandbox["env"], timeout=900)
    if check and proc.returncode != 0:
        pytest.fail(f"sandbox snakemake {args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def sandbox_plan(sandbox: dict, *args: str) -> dict[str, int]:
    return parse_job_stats(run_sandbox(sandbox, "-n", *args).stdout)


@pytest.fixture(scope="module")
def sandbox(demo_run, tmp_path_factory):
    """A copy of the workflow + package, working on a copy of the finished demo run (the
    reference run: its dataset stage is what the edits and the kill are checked against)."""
    root = tmp_path_factory.mktemp("rerun_sandbox")
    (root / "repo").mkdir()
    repo = _copy_repo(root / "repo")
    return {"repo": repo, "workdir": copy_run(demo_run, root / "wd"), "env": sandbox_env(repo)}


def test_sandbox_runs_the_copied_package(sandbox):
    # The workflow imports `ecem` from the copy, so editing the copy is an honest code change.
    out = subprocess.run([str(Path(SNAKEMAKE).with_name("python")), "-c", "import ecem; print(ecem.__file__)"],
                         capture_output=True, text=True, env=sandbox["env"], check=True).stdout
    assert out.strip() == str(sandbox["repo"] / "src/ecem/__init__.py")


def test_package_code_edit_reruns_exactly_the_jobs_that_run_it(sandbox):
    assert sandbox_plan(sandbox, DATASET_TARGET) == {}
    module = sandbox["repo"] / "src/ecem/dataset/split.py"
    original = module.read_text()
    try:
        # A real edit of one function body: only the split job runs that function.
        edited = original.replace("    if samples.empty:", "    if samples.empty:  # edited", 1)
        assert edited != original
        module.write_text(edited)
        jobs = sandbox_plan(sandbox, DATASET_TARGET)
        assert jobs == {"split_samples": 1, "dataset_quality": 1}, jobs
        # Touching a module (a checkout, a fresh clone) changes its time, not its code: no rerun.
        module.write_text(original)
        os.utime(module)
        assert sandbox_plan(sandbox, DATASET_TARGET) == {}
    finally:
        module.write_text(original)
    assert sandbox_plan(sandbox, DATASET_TARGET) == {}


def test_a_fresh_copy_of_the_repository_plans_nothing_on_finished_results(demo_run, tmp_path):
    # As after `git clone`: every file of the workflow and the package is new (fresh times), the
    # finished results and Snakemake's records are copied in as they are.
    repo = tmp_path / "clone"
    repo.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, repo / name)
    for name in ("workflow", "profiles", "src", "envs"):
        shutil.copytree(REPO / name, repo / name, copy_function=shutil.copy,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    workdir = copy_run(demo_run, tmp_path / "wd")
    proc = subprocess.run([SNAKEMAKE, "-s", str(repo / "Snakefile"), "-d", str(workdir), "--cores", "2", "-n"],
                          capture_output=True, text=True, env=sandbox_env(repo), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert parse_job_stats(proc.stdout + proc.stderr) == {}, (proc.stdout + proc.stderr)[-3000:]


def _digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*.mp4"))}


def test_killed_job_is_redone_and_equals_an_uninterrupted_run(sandbox):
    wd = sandbox["workdir"]
    shard_dir = wd / "results/ecem/render/shard-0"
    tables = [wd / f"results/ecem/render/shard-0.{t}.parquet" for t in ("segments", "clips")]
    reference = {"videos": _digest(shard_dir), **{t.name: read_table(t) for t in tables}}
    assert reference["videos"], "the reference run rendered no clips"

    # Rerun the shard and SIGKILL the whole snakemake process group as soon as it has begun
    # writing clips (before it could finish its tables).
    proc = subprocess.Popen(sandbox_cmd(sandbox, "--forcerun", "render_clips",
                                        str(tables[1].relative_to(wd))),
                            env=sandbox["env"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    started, deadline = time.time(), time.monotonic() + 600

    def clip_mtimes() -> dict[Path, float]:
        """One snapshot of the shard's clips; Snakemake deletes the old ones while we look."""
        snapshot = {}
        try:
            for path in shard_dir.rglob("*.mp4"):
                try:
                    snapshot[path] = path.stat().st_mtime
                except FileNotFoundError:
                    continue
        except FileNotFoundError:  # the whole directory vanished mid-walk
            return {}
        return snapshot

    try:
        snapshot: dict[Path, float] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            snapshot = clip_mtimes()
            if any(mtime > started for mtime in snapshot.values()):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the render job finished before it could be killed"
        # Snakemake removed the old outputs before the job began; it has written only some clips.
        new = [p for p, mtime in snapshot.items() if mtime > started]
        assert 0 < len(new) == len(snapshot) < len(reference["videos"]), (len(new), len(snapshot))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    # Mid-write state: partial clip directory, no final tables (atomic writes: never a truncated
    # Parquet at the final path).
    assert not any(t.exists() for t in tables)
    # A killed Snakemake leaves its working-directory lock behind; `--unlock` is the documented
    # recovery (it removes the lock only, not the incomplete-job records).
    run_sandbox(sandbox, "--unlock", DATASET_TARGET)
    # Snakemake remembers the job as incomplete and refuses to trust its outputs ...
    strict = run_sandbox(sandbox, "-n", "--workflow-profile", "none", DATASET_TARGET, check=False)
    assert strict.returncode != 0 and "incomplete" in (strict.stdout + strict.stderr).lower()
    # ... and with --rerun-incomplete (the profiles' default) it redoes it.
    redo = run_sandbox(sandbox, "--rerun-incomplete", DATASET_TARGET)
    assert re.search(r"rule render_clips:(?:.|\n)*?wildcards: shard=0", redo.stdout + redo.stderr)

    assert _digest(shard_dir) == reference["videos"]  # byte-identical re-encodes
    for table in tables:
        pd.testing.assert_frame_equal(read_table(table), reference[table.name])
    assert sandbox_plan(sandbox, DATASET_TARGET) == {}
