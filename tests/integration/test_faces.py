"""The facial emotion stage on the demo run, checked against what the corpus planted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecem.artifacts import read_metadata, read_table
from ecem.faces.labels import MELD_LABELS
from ecem.faces.stage import sample_indices
from ecem.faces.track import box_iou

pytestmark = pytest.mark.integration


def _truth(workdir: Path) -> dict[tuple[str, int, int], dict]:
    truth = json.loads((workdir / "resources/demo/truth.json").read_text())
    return {(c["split"], c["dialogue_id"], c["utterance_id"]): c for c in truth["clips"]}


def _load(workdir: Path):
    faces = read_table(workdir / "results/features/faces.parquet")
    segs = read_table(workdir / "results/ecem/segments.parquet")
    return faces, segs, read_metadata(workdir / "results/features/faces.parquet")["settings"]


def test_detections_match_planted_faces(demo_run: Path) -> None:
    faces, segs, meta = _load(demo_run)
    truth = _truth(demo_run)
    sample_fps = meta["config"]["sample_fps"]
    checked = {"one": 0, "two": 0, "occluded": 0, "none": 0}
    for seg in segs[segs["status"] == "ok"].itertuples(index=False):
        key = (seg.meld_split, int(seg.dialogue_id), int(seg.utterance_id))
        mine = faces[(faces["meld_split"] == key[0]) & (faces["dialogue_id"] == key[1])
                     & (faces["utterance_id"] == key[2])]
        frames = sample_indices(int(seg.first_frame), int(seg.last_frame), float(seg.fps), sample_fps)
        assert set(mine["frame_idx"]) <= set(frames)
        for f in frames:
            planted = np.array(truth[key]["face_boxes"][f], dtype=float).reshape(-1, 4)
            found = np.stack(mine.loc[mine["frame_idx"] == f, "box"].to_numpy()) if (mine["frame_idx"] == f).any() \
                else np.zeros((0, 4))
            if len(planted) == 0:
                assert len(found) == 0, f"{key} frame {f}: a face where none was planted"
                checked["none"] += 1
                continue
            iou = box_iou(planted, found)
            occluded = len(planted) == 2 and box_iou(planted[:1], planted[1:])[0, 0] > 0
            if occluded:  # one sprite covers part of the other: the visible face(s) must be right
                assert len(found) >= 1 and iou.max(axis=0).min() >= 0.5, f"{key} frame {f}"
                checked["occluded"] += 1
            else:
                assert len(found) == len(planted), f"{key} frame {f}: {len(found)} faces, planted {len(planted)}"
                assert iou.max(axis=1).min() >= 0.5, f"{key} frame {f}: IoU {iou.max(axis=1)}"
                checked["one" if len(planted) == 1 else "two"] += 1
    assert checked["one"] > 100 and checked["two"] >= 3 and checked["none"] >= 10, checked


def test_labels_probabilities_and_tracks(demo_run: Path) -> None:
    faces, _, meta = _load(demo_run)
    assert meta["labels"] == list(MELD_LABELS)
    assert meta["model_labels"] == ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
    assert meta["label_map"]["Happy"] == "joy" and meta["detector"] == "mtcnn"
    probs = np.stack(faces["emotion_probs"].to_numpy())
    assert probs.shape[1] == 7
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
    assert (faces["det_score"] >= meta["config"]["detector"]["score_threshold"]).all()
    assert all(len(lm) == 10 for lm in faces["landmarks"])
    # two planted faces (train dia0 utt3) stay two tracks; every other segment is one person
    per_seg = faces.groupby(["meld_split", "dialogue_id", "utterance_id"])["track_id"].nunique()
    assert per_seg.loc[("train", 0, 3)] == 2
    assert (per_seg.drop(("train", 0, 3)) == 1).all(), per_seg.to_dict()
    # each track follows one planted person (matched by IoU in every frame): no identity swaps
    two = faces[(faces["meld_split"] == "train") & (faces["dialogue_id"] == 0) & (faces["utterance_id"] == 3)]
    planted_boxes = _truth(demo_run)[("train", 0, 3)]["face_boxes"]
    person = {}
    for row in two.itertuples(index=False):
        iou = box_iou(np.array(planted_boxes[row.frame_idx], float), np.array([row.box], float))[:, 0]
        person.setdefault(row.track_id, set()).add(int(np.argmax(iou)))
    assert sorted(map(sorted, person.values())) == [[0], [1]], person
    # the face that the previous utterance shows in train dia2 utt2's first frames is excluded
    truth = _truth(demo_run)[("train", 2, 2)]
    assert truth["face_boxes"][0] and truth["overlap_with_previous"] > 0
    assert not ((faces["meld_split"] == "train") & (faces["dialogue_id"] == 2) & (faces["utterance_id"] == 2)).any()


def test_summary_and_quality(demo_run: Path) -> None:
    summary = read_table(demo_run / "results/features/face_summary.parquet")
    clips = read_table(demo_run / "results/ecem/clips.parquet")
    assert sorted(summary["sample_id"]) == sorted(clips.loc[clips["status"] == "ok", "sample_id"])
    s = summary.set_index("sample_id")
    assert s.loc["train/dia2_utt2", "status"] == "no_face"
    assert s.loc["train/dia2_utt2", "face_emotion"] == "neutral"
    ok = s.drop("train/dia2_utt2")
    assert (ok["status"] == "ok").all() and ok["face_emotion"].isin(MELD_LABELS).all()
    assert s.loc["train/dia0_utt3", "n_tracks"] == 2 and s.loc["train/dia0_utt3", "n_faces"] == 2
    assert (ok.drop("train/dia0_utt3")["n_tracks"] == 1).all()
    for dist, emo in zip(ok["distribution"], ok["face_emotion"]):
        assert len(dist) == 7 and MELD_LABELS[int(np.argmax(dist))] == emo
    quality = json.loads((demo_run / "results/quality/faces.json").read_text())
    assert quality["samples"]["no_face"] == ["train/dia2_utt2"]
    assert quality["samples"]["quarantined_upstream"] == int((clips["status"] != "ok").sum())
    assert quality["random_weights"] is False and quality["detector"] == "mtcnn"
    assert quality["frames_with_face"] > 0 and "throughput" not in quality  # timings: the job's log
    assert isinstance(pd.DataFrame(s.loc["train/dia0_utt3", "tracks"].tolist()), pd.DataFrame)
