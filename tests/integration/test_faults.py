"""Planted faults (tests/fault_corpus.py) through the dataset stage: each one becomes a named
status or quarantine with its reason, the run completes, and the other samples are unaffected.

The run happens the way a new user would meet it: in a folder whose name holds quotes, shell
syntax and URL characters, and with the disk full for a moment while the first segment is
encoded (ffmpeg's output then goes to /dev/full once), which fails that job with one line; the
rerun after it builds everything."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import av
import pytest

from ecem.artifacts import read_table
from ecem.ffmpeg import ffmpeg_exe
from tests.helpers import artifact_problems, run_snakemake, write_config
from tests.fault_corpus import (
    EXPECTED_ADJUSTMENTS, EXPECTED_QUARANTINE, EXPECTED_SAMPLES, EXPECTED_UTTERANCES, FORMULA_SPEAKER,
    FORMULA_TEXT, LONG_CAUSE_CHARS, LONG_CAUSE_SAMPLE, MULTI_LINE_TEXT, plant_faults,
)

pytestmark = pytest.mark.integration

WEIRD = "we ird 'sq' \"dq\" $(touch X) `touch Y` ü ?#:"
FULL_ONCE = """#!{python}
# ffmpeg, except that the first call (across processes) finds its output path on a full disk
import os, sys
try:
    os.mkdir({marker!r})
    os.symlink("/dev/full", sys.argv[-1])
except FileExistsError:
    pass
os.execv({ffmpeg!r}, [{ffmpeg!r}, *sys.argv[1:]])
"""


@pytest.fixture(scope="module")
def first_attempt(demo_run: Path, tmp_path_factory: pytest.TempPathFactory):
    """(working directory, the run that met a full disk): the corpus with its faults planted."""
    work = tmp_path_factory.mktemp("faults") / WEIRD
    demo = demo_run / "resources/demo"
    root, annotations = plant_faults(demo / "MELD.Raw", demo / "ecem_annotations.json", work / "in")
    config = write_config(work / "faults.yaml", {"demo": {"enabled": False},
                                                 "meld": {"root": str(root)},
                                                 "ecem": {"annotations": str(annotations)}})
    wrapper = work.parent / "ffmpeg-full-once"
    wrapper.write_text(FULL_ONCE.format(python=sys.executable, marker=str(work.parent / "disk-was-full"),
                                        ffmpeg=ffmpeg_exe()))
    wrapper.chmod(0o755)
    failed = run_snakemake(work, "results/ecem/quality.json", "--configfile", str(config), check=False,
                           env={"IMAGEIO_FFMPEG_EXE": str(wrapper)})
    return work, config, failed


@pytest.fixture(scope="module")
def fault_run(first_attempt) -> Path:
    work, config, _ = first_attempt
    run_snakemake(work, "results/ecem/quality.json", "--configfile", str(config))  # space freed
    return work


def test_a_moment_of_full_disk_fails_the_job_with_one_line_and_the_rerun_builds_all(first_attempt, fault_run):
    work, _, failed = first_attempt
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0
    lines = [ln for ln in out.splitlines() if "fault of the machine" in ln]
    assert lines, out[-3000:]
    assert all("No space left on device: " in ln and "/segments/" in ln for ln in lines), lines
    assert "Traceback" not in out and "render_failed" not in out
    segments = _table(fault_run, "segments")
    assert (segments["status"] == "ok").all()  # nothing was quarantined for the full disk
    assert not any(p.name in ("X", "Y") for p in work.parent.rglob("*"))  # no name was executed


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


def _in_sync(run: Path, clip) -> tuple[float, float]:
    with av.open(str(run / clip["clip_path"])) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        v_s, a_s = float(video.duration * video.time_base), float(audio.duration * audio.time_base)
        assert video.frames == clip["n_frames"]
    assert abs(v_s - a_s) < 0.1 and v_s == pytest.approx(clip["duration_s"], abs=0.05)
    return v_s, a_s


@pytest.mark.parametrize("utt,sample,what", [
    (("train", 0, 4), "train/dia0_utt4", "30.000 fps: resampled by timestamps to 23.976 fps"),
    (("train", 4, 3), "train/dia4_utt3", "frame rate varies (mean "),
])
def test_clips_at_another_or_a_varying_rate_are_resampled_and_stay_in_sync(fault_run, demo_run, utt, sample,
                                                                           what):
    segs = _table(fault_run, "segments").set_index(["meld_split", "dialogue_id", "utterance_id"])
    seg = segs.loc[utt]
    assert seg["render_fps"] == pytest.approx(24000 / 1001) and what in seg["status_detail"]
    assert seg["overlap_source"] == "fps_mismatch" and len(seg["source_frames"]) == seg["n_frames"]
    # the duration is kept: as many frames at the dialogue's rate as the clip lasts
    demo = _table(demo_run, "segments").set_index(["meld_split", "dialogue_id", "utterance_id"]).loc[utt]
    assert abs(seg["n_frames"] - demo["source_n_frames"]) <= 1
    _in_sync(fault_run, _table(fault_run, "clips").set_index("sample_id").loc[sample])


def test_every_adjusted_segment_is_named_and_counted(fault_run):
    segs = _table(fault_run, "segments")
    got = {(r.meld_split, r.dialogue_id, r.utterance_id): list(r.adjustments)
           for r in segs.itertuples() if len(r.adjustments)}
    assert got == EXPECTED_ADJUSTMENTS
    by_key = segs.set_index(["meld_split", "dialogue_id", "utterance_id"])
    rotated = by_key.loc[("train", 3, 2)]
    assert "turned upright (display matrix: rotated 90°)" in rotated["status_detail"]
    assert "fitted 240×320 into 320×240 (aspect kept, pillarboxed)" in rotated["status_detail"]
    assert "letterboxed" in by_key.loc[("train", 0, 2), "status_detail"]
    odd = by_key.loc[("train", 5, 1)]
    assert "odd frame size 321×241 padded to 322×242" in odd["status_detail"]
    assert (odd["render_width"], odd["render_height"]) == (322, 242)
    utts = _table(fault_run, "utterances").set_index(["meld_split", "dialogue_id", "utterance_id"])
    assert (utts.loc[("train", 3, 2), ["rotation", "width", "height"]] == [90, 240, 320]).all()
    variable = utts.index[utts["variable_rate"] & (utts["status"] == "ok")]
    assert list(variable) == [("train", 4, 3)]
    quality = json.loads((fault_run / "results/ecem/quality.json").read_text())["formats"]
    assert quality["by_adjustment"] == {"fitted": 2, "padded_to_even": 5, "resampled": 2, "rotated": 1}
    assert len(quality["segments"]) == len(EXPECTED_ADJUSTMENTS)
    with av.open(str(fault_run / _table(fault_run, "clips").set_index("sample_id").loc[
            "train/dia5_utt4", "clip_path"])) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (322, 242)


def test_texts_are_kept_verbatim_and_lines_counted_as_a_person_counts_them(fault_run):
    utts = _table(fault_run, "utterances").set_index(["meld_split", "dialogue_id", "utterance_id"])
    formulas = utts.loc[("test", 1, 0)]
    assert formulas["speaker"] == FORMULA_SPEAKER and formulas["text"] == FORMULA_TEXT
    assert utts.loc[("train", 3, 0), "text"] == MULTI_LINE_TEXT
    lines = (fault_run / "in/MELD.Raw/train_sent_emo.csv").read_text(encoding="utf-8").splitlines()
    with (fault_run / "in/MELD.Raw/train_sent_emo.csv").open(encoding="utf-8", newline="") as fh:
        sr = {(int(r["Dialogue_ID"]), r["Utterance_ID"]): r["Sr No."] for r in csv.DictReader(fh)}
    physical = lines.index(next(ln for ln in lines if ln.startswith(sr[(3, "1")] + ","))) + 1
    assert utts.loc[("train", 3, 1), "csv_line"] == physical  # after the two-line utterance


def test_an_over_long_cause_and_a_clip_of_another_split_are_named(fault_run):
    quality = json.loads((fault_run / "results/ecem/quality.json").read_text())
    long = quality["causes"]["long"]
    assert [r["sample_id"] for r in long] == [LONG_CAUSE_SAMPLE] and long[0]["chars"] > LONG_CAUSE_CHARS - 2
    quarantine = _table(fault_run, "quarantine")
    dev = quarantine[quarantine["annotation_ref"] == "dev/0_1.mp4"]
    assert list(dev["reason"]) == ["malformed"] and "names MELD's dev split" in dev["detail"].iloc[0]


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
