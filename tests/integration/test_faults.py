"""Planted faults (tests/fault_corpus.py) through the dataset stage: each one becomes a named
status or quarantine with its reason, the run completes, and the other samples are unaffected."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import av
import pytest

from ecem.artifacts import read_table
from tests.helpers import artifact_problems, run_snakemake, write_config
from tests.fault_corpus import EXPECTED_QUARANTINE, EXPECTED_SAMPLES, EXPECTED_UTTERANCES, plant_faults

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fault_run(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("faults")
    demo = demo_run / "resources/demo"
    root, annotations = plant_faults(demo / "MELD.Raw", demo / "ecem_annotations.json", work / "in")
    config = write_config(work / "faults.yaml", {"demo": {"enabled": False},
                                                 "meld": {"root": str(root)},
                                                 "ecem": {"annotations": str(annotations)}})
    run_snakemake(work, "results/ecem/quality.json", "--configfile", str(config))
    return work


def _table(run: Path, name: str):
    return read_table(run / f"results/ecem/{name}.parquet")


def test_every_planted_clip_or_row_fault_gets_its_status_and_reason(fault_run):
    utts = _table(fault_run, "utterances").set_index(["meld_split", "dialogue_id", "utterance_id"])
    for key, status in EXPECTED_UTTERANCES.items():
        assert utts.loc[key, "status"] == status, (key, utts.loc[key, "status_detail"])
        assert status == "ok" or utts.loc[key, "status_detail"], key
    assert "truncated" in utts.loc[("test", 0, 2), "status_detail"]
    assert "10.1x" in utts.loc[("train", 2, 2), "status_detail"]
    assert "'0:38.997'" in utts.loc[("train", 1, 0), "status_detail"]


def test_samples_are_kept_or_quarantined_by_their_targets_reason(fault_run):
    clips = _table(fault_run, "clips").set_index("sample_id")
    got = {sid: (r.status, r.reason) for sid, r in clips.iterrows()}
    assert {sid: got.get(sid) for sid in EXPECTED_SAMPLES} == EXPECTED_SAMPLES
    # the demo's other dialogues carry no fault: every one of their samples renders
    assert {v for sid, v in got.items() if sid not in EXPECTED_SAMPLES} == {("ok", "")}
    assert list(clips.loc["train/dia1_utt2", "skipped_utterances"]) == [0, 1]


def test_quarantine_and_quality_count_every_reason(fault_run):
    quarantine = _table(fault_run, "quarantine")
    assert quarantine["reason"].value_counts().to_dict() == EXPECTED_QUARANTINE
    meld_rows = quarantine[quarantine["source"] == "meld"]
    assert sorted(meld_rows["reason"]) == ["bad_meld_row", "duplicate_row"]
    assert all(ref.startswith("train_sent_emo.csv:") for ref in meld_rows["annotation_ref"])
    quality = json.loads((fault_run / "results/ecem/quality.json").read_text())
    counted = quality["quarantined_by_reason"]
    assert counted["annotations"] == EXPECTED_QUARANTINE
    bad = {k: v for k, v in EXPECTED_UTTERANCES.items() if v != "ok"}
    assert sum(counted["utterances"].values()) == len(bad) + 3  # + the demo's corrupt, missing, silent
    assert counted["samples"] == {"bad_times": 1, "corrupt": 1, "duration_mismatch": 1, "missing": 1}


def test_samples_the_faults_do_not_touch_are_unaffected(fault_run, demo_run):
    mine, demo = (_table(r, "clips").set_index("sample_id") for r in (fault_run, demo_run))
    for sid in ("train/dia0_utt1", "train/dia0_utt3"):  # the 720p clip is their context
        for col in ("status", "n_frames", "frames_removed"):
            assert mine.loc[sid, col] == demo.loc[sid, col], (sid, col)
        assert list(mine.loc[sid, "skipped_utterances"]) == list(demo.loc[sid, "skipped_utterances"])
        assert [s["overlap_frames"] for s in mine.loc[sid, "segments"]] == [
            s["overlap_frames"] for s in demo.loc[sid, "segments"]]


def test_a_30fps_clip_is_retimed_and_its_prefix_clip_stays_in_sync(fault_run):
    segs = _table(fault_run, "segments").set_index(["meld_split", "dialogue_id", "utterance_id"])
    seg = segs.loc[("train", 0, 4)]
    assert seg["fps"] == pytest.approx(30.0) and seg["render_fps"] == pytest.approx(24000 / 1001)
    assert seg["overlap_source"] == "fps_mismatch" and "re-timed from 30.000" in seg["status_detail"]
    clip = _table(fault_run, "clips").set_index("sample_id").loc["train/dia0_utt4"]
    with av.open(str(fault_run / clip["clip_path"])) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        v_s, a_s = float(video.duration * video.time_base), float(audio.duration * audio.time_base)
        assert video.frames == clip["n_frames"]
    assert abs(v_s - a_s) < 0.1 and v_s == pytest.approx(clip["duration_s"], abs=0.05)
    quality = json.loads((fault_run / "results/ecem/quality.json").read_text())
    assert [(r["dialogue_id"], r["utterance_id"]) for r in quality["dedup"]["retimed"]] == [(0, 4)]


@pytest.mark.parametrize("fault,message", [
    ("cp1252_csv", r"train_sent_emo.csv: not UTF-8 \(byte 0x92 on line \d+\)"),
    ("empty_csv", "train_sent_emo.csv: the file is empty"),
    ("cut_json", r"ecem.json: not valid JSON .* is the file complete\?"),
])
def test_an_unreadable_input_file_stops_the_job_with_one_line_naming_it(demo_run, tmp_path, fault, message):
    root = tmp_path / "MELD.Raw"
    shutil.copytree(demo_run / "resources/demo/MELD.Raw", root)
    annotations = tmp_path / "ecem.json"
    shutil.copy(demo_run / "resources/demo/ecem_annotations.json", annotations)
    csv = root / "train_sent_emo.csv"
    if fault == "cp1252_csv":
        csv.write_bytes(csv.read_text(encoding="utf-8").replace("\u2019", "'").replace(
            "â€™", "'").replace("'", "\u2019").encode("cp1252"))
    elif fault == "empty_csv":
        csv.write_bytes(b"")
    else:
        annotations.write_bytes(annotations.read_bytes()[:200])
    config = write_config(tmp_path / "c.yaml", {"demo": {"enabled": False}, "meld": {"root": str(root)},
                                                "ecem": {"annotations": str(annotations)}})
    proc = run_snakemake(tmp_path, "results/ecem/resolved.parquet", "--configfile", str(config), check=False)
    assert proc.returncode != 0
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if re.search(message, ln)]
    assert lines, (proc.stdout + proc.stderr)[-3000:]


def test_the_fault_runs_artifacts_meet_their_column_contracts(fault_run):
    assert artifact_problems(fault_run) == []
