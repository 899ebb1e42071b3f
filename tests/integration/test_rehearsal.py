"""The rehearsal corpus: a MELD-shaped corpus of the asked size that the dataset stage rebuilds
exactly (every annotation resolved, every planted overlap found), and a full plan at any size
(config/rehearsal.yaml). The corpus checks read the shared smoke run, whose config/smoke.yaml is a
24-sample rehearsal corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ecem.artifacts import read_table
from tests.helpers import REPO, planned_jobs

pytestmark = pytest.mark.integration

REHEARSAL = str(REPO / "config" / "rehearsal.yaml")


def _size_file(work: Path, samples: int) -> str:
    path = work / "size.yaml"
    path.write_text(yaml.safe_dump({"demo": {"rehearsal": {"samples": samples, "seed": 5}}}))
    return str(path)


def test_rehearsal_dataset_is_rebuilt_exactly(smoke_run: Path) -> None:
    annotations = read_table(smoke_run / "results/ecem/annotations.parquet")
    quarantine = read_table(smoke_run / "results/ecem/quarantine.parquet")
    assert len(annotations) == 24 and len(quarantine) == 0  # every generated annotation resolves
    assert set(annotations["split"]) <= {"train", "val", "test"}
    truth = json.loads((smoke_run / "resources/demo/truth.json").read_text())
    assert (truth["width"], truth["height"]) == (160, 120)
    planted = {(c["split"], c["dialogue_id"], c["utterance_id"]): c["overlap_with_previous"] for c in truth["clips"]}
    segments = read_table(smoke_run / "results/ecem/segments.parquet")
    # a dialogue is rendered up to its last annotated utterance (dev dialogues have none)
    last = annotations.groupby(["meld_split", "dialogue_id"])["utterance_id"].max().to_dict()
    assert len(segments) == sum(u + 1 for u in last.values()) and (segments["status"] == "ok").all()
    for row in segments.itertuples():
        assert row.overlap_frames == planted[(row.meld_split, row.dialogue_id, row.utterance_id)], row
    assert segments["overlap_frames"].sum() > 0
    clips = read_table(smoke_run / "results/ecem/clips.parquet")
    assert (clips["status"] == "ok").all() and len(clips) == 24
    # the rehearsal's prefix clips are playlists of the segments, as at full scale
    assert clips["clip_path"].str.endswith(".ffconcat").all()


def test_rehearsal_plans_every_stage_at_a_larger_size(tmp_path: Path) -> None:
    jobs = planned_jobs(tmp_path, "--configfile", REHEARSAL, _size_file(tmp_path, 3000))
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert jobs["demo_corpus"] == 1 and jobs["render_clips"] == 4 and jobs["faces_shard"] == 4
    assert jobs["fame_train"] == len(config["experiments"]) and jobs["tiny_llm"] == 1
    assert jobs["evaluate_report"] == 1
