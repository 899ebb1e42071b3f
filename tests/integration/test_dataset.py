"""The dataset stage on the demo corpus, checked against what the corpus planted (truth.json)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ecem.artifacts import read_metadata, read_table
from ecem.clip_probe import probe_clip
from ecem.media import read_frames
from tests.helpers import planned_jobs, run_snakemake, write_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def truth(demo_run):
    data = json.loads((demo_run / "resources/demo/truth.json").read_text())
    return {(c["split"], c["dialogue_id"], c["utterance_id"]): c for c in data["clips"]}


@pytest.fixture(scope="module")
def tables(demo_run):
    ecem = demo_run / "results/ecem"
    return {name: read_table(ecem / f"{name}.parquet")
            for name in ("annotations", "quarantine", "utterances", "segments", "clips")}


def test_demo_corpus_is_in_meld_layout(demo_run, truth):
    root = demo_run / "resources/demo/MELD.Raw"
    csv = pd.read_csv(root / "train_sent_emo.csv")
    assert list(csv.columns[:3]) == ["Sr No.", "Utterance", "Speaker"]
    assert csv["Utterance"].str.contains("\u2019").any()  # curly quote
    assert csv["Utterance"].str.contains("â€™").any()  # planted mojibake
    assert (root / "train_splits/dia0_utt5.mp4").exists()
    assert (root / "output_repeated_splits_test/dia0_utt2.mp4").exists()
    assert (root / "dev_splits_complete/dia0_utt0.mp4").exists()
    assert sum(1 for k in truth if k[0] == "train" and k[1] == 0) >= 6


def test_exact_frames_removed_at_each_planted_overlap(tables, truth):
    segs = tables["segments"]
    for row in segs.itertuples():
        planted = truth[(row.meld_split, row.dialogue_id, row.utterance_id)]
        previous = truth.get((row.meld_split, row.dialogue_id, row.utterance_id - 1))
        # The overlap is with the previous clip only if that clip was usable.
        expected = planted["overlap_with_previous"] if previous and previous["fault"] not in (
            "corrupt", "missing") else 0
        assert row.overlap_frames == expected, row
        assert row.n_frames == planted["n_frames"] - expected
    assert (segs.loc[segs["overlap_frames"] > 0, "overlap_source"] == "frames").all()
    assert segs["overlap_frames"].sum() > 0


def test_prefix_clip_frames_equal_sum_of_kept_segments(tables, truth, demo_run):
    clips = tables["clips"][tables["clips"]["status"] == "ok"]
    assert len(clips) == len(tables["clips"]) - 1  # every sample but the planted missing clip's
    for row in clips.itertuples():
        probe = probe_clip(demo_run / row.clip_path)
        kept = sum(int(s["n_frames"]) for s in row.segments)
        assert probe.n_frames == kept == row.n_frames
        planted = sum(truth[(row.meld_split, row.dialogue_id, int(s["utterance_id"]))]["n_frames"]
                      for s in row.segments)
        assert kept == planted - row.frames_removed
        assert probe.has_audio and abs(probe.duration_s - row.duration_s) < 1e-3  # timebase rounding
        assert [int(s["utterance_id"]) for s in row.segments] == sorted(
            set(range(row.utterance_id + 1)) - set(row.skipped_utterances))


def test_prefix_clip_ends_with_the_target_and_repeats_no_frame(tables, demo_run):
    row = tables["clips"].set_index("sample_id").loc["train/dia0_utt3"]
    clip = read_frames(demo_run / row["clip_path"], gray=True).astype(float)
    source = read_frames(demo_run / "resources/demo/MELD.Raw/train_splits/dia0_utt3.mp4", gray=True)
    assert abs(clip[-1] - source[-1]).mean() < 3  # last frame is the target's last frame
    # At each segment boundary the next frame is new (a repeated frame would be ~identical).
    boundary = 0
    for seg in row["segments"][:-1]:
        boundary += int(seg["n_frames"])
        assert abs(clip[boundary] - clip[boundary - 1]).max() > 40


def test_planted_bad_clips_get_status_and_reason(tables, demo_run):
    utts = tables["utterances"].set_index(["meld_split", "dialogue_id", "utterance_id"])
    assert utts.loc[("train", 1, 1), "status"] == "corrupt"
    assert utts.loc[("train", 2, 3), "status"] == "missing"
    assert "not found" in utts.loc[("train", 2, 3), "status_detail"]
    assert utts.loc[("train", 2, 1), "status"] == "no_audio"
    assert "silent" in utts.loc[("train", 2, 1), "status_detail"]
    assert (utts.drop(index=[("train", 1, 1), ("train", 2, 3), ("train", 2, 1)])["status"] == "ok").all()
    clips = tables["clips"].set_index("sample_id")
    assert clips.loc["train/dia2_utt3", "status"] == "quarantined"
    assert "missing" in clips.loc["train/dia2_utt3", "status_detail"]
    assert list(clips.loc["train/dia1_utt2", "skipped_utterances"]) == [1]
    quality = json.loads((demo_run / "results/ecem/quality.json").read_text())
    n_utterances = len(tables["utterances"])
    assert quality["utterances"]["by_status"] == {"corrupt": 1, "missing": 1, "no_audio": 1,
                                                  "ok": n_utterances - 3}
    assert quality["clips"]["by_status"] == {"ok": len(tables["clips"]) - 1, "quarantined": 1}
    assert quality["annotations"]["quarantined"] == {"neutral": 1, "unmatched": 1}


def test_annotations_resolved_dropped_and_split(tables):
    ann = tables["annotations"].set_index("sample_id")
    assert ann.loc["train/dia1_utt2", "annotation_ref"] == "1_1.mp4"  # offset id resolved
    assert ann.loc["train/dia1_utt2", "match"] == "shifted"
    assert ann.loc["test/dia0_utt2", "annotation_ref"] == "t_0_2.mp4"
    assert "neutral" not in set(ann["emotion"])
    quarantine = tables["quarantine"].set_index("annotation_ref")
    assert quarantine.loc["2_1.mp4", "reason"] == "unmatched"
    assert quarantine.loc["0_2.mp4", "reason"] == "neutral"
    assert (tables["annotations"].groupby(["meld_split", "dialogue_id"])["split"].nunique() == 1).all()
    assert ann.loc["train/dia0_utt4", "utterance_text"] == "I told you I don\u2019t eat meat anymore."


def test_artifacts_carry_their_settings(demo_run):
    meta = read_metadata(demo_run / "results/ecem/annotations.parquet")
    assert meta["stage"] == "dataset" and meta["settings"]["split"]["seed"] == 13


def test_misspelled_config_key_stops_the_run(demo_run, tmp_path):
    bad = write_config(tmp_path / "bad.yaml", {"dataset": {"split": {"sed": 1}}})
    proc = run_snakemake(demo_run, "-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "unknown config key 'dataset.split.sed'" in proc.stdout + proc.stderr


def test_editing_the_split_reruns_the_split_but_not_rendering(demo_run, tmp_path):
    jobs = planned_jobs(demo_run, "--configfile",
                        str(write_config(tmp_path / "c.yaml", {"dataset": {"split": {"seed": 99}}})))
    assert jobs.get("split_samples") == 1
    for untouched in ("demo_corpus", "resolve_annotations", "probe_utterances", "render_clips"):
        assert untouched not in jobs
    jobs = planned_jobs(demo_run, "--configfile",
                        str(write_config(tmp_path / "d.yaml", {"dataset": {"dedup": {"search_frames": 2}}})))
    assert jobs.get("render_clips") == 2 and "split_samples" not in jobs


def test_annotations_need_no_videos(demo_run):
    # Building the annotation table touches only the CSVs and the JSON, not probing or rendering.
    # (targets go before --forcerun, which takes several values)
    jobs = planned_jobs(demo_run, "results/ecem/annotations.parquet", "--forcerun", "resolve_annotations")
    assert set(jobs) == {"resolve_annotations", "split_samples"}
