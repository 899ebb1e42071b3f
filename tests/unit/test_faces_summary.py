"""Per-sample E_cls: speaker-face rule, no_face rule, frame sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecem.faces.labels import MELD_LABELS
from ecem.faces.stage import compose_sample, sample_indices
from ecem.faces.summary import speaker_track, summarize, track_scores

CFG = {"no_face_emotion": "neutral", "min_track_frames": 2}


def _probs(label):
    p = np.full(7, 0.01, np.float32)
    p[MELD_LABELS.index(label)] = 0.94
    return p.tolist()


def _face(uid, frame, box, label, track):
    """A face in source frame `frame`, shown as frame `frame - first_frame` of its segment."""
    return {"meld_split": "train", "dialogue_id": 4, "utterance_id": uid, "frame_idx": frame,
            "segment_frame": frame - (0 if uid == 0 else 3), "box": box, "emotion_probs": _probs(label),
            "track_id": track, "frame_width": 320, "frame_height": 240}


def _clips():
    segs = [{"utterance_id": u, "first_frame": 0 if u == 0 else 3, "last_frame": 40, "n_frames": 41 - (u > 0) * 3,
             "overlap_frames": 0} for u in range(3)]
    return pd.DataFrame([
        {"sample_id": f"train/dia4_utt{u}", "meld_split": "train", "dialogue_id": 4, "utterance_id": u,
         "status": "ok", "segments": segs[: u + 1]} for u in (1, 2)
    ] + [{"sample_id": "train/dia9_utt0", "meld_split": "train", "dialogue_id": 9, "utterance_id": 0,
          "status": "quarantined", "segments": []}])


def _segments():
    return pd.DataFrame([{"meld_split": "train", "dialogue_id": 4, "utterance_id": u, "status": "ok",
                          "status_detail": "", "n_frames_sampled": 10} for u in range(3)])


def test_speaker_is_large_central_persistent_track():
    faces = pd.DataFrame(
        # utterance 1: a small face at the edge (anger) for 3 frames, a large central face (joy)
        [_face(1, f, [0, 0, 40, 40], "anger", 0) for f in (0, 3, 6)]
        + [_face(1, f, [110, 60, 210, 180], "joy", 1) for f in (0, 3, 6)]
        # a one-frame large face is ignored (min_track_frames = 2)
        + [_face(1, 9, [100, 40, 230, 200], "fear", 2)]
        # utterance 0 (context only): surprise
        + [_face(0, f, [110, 60, 210, 180], "surprise", 0) for f in (0, 3)]
    )
    tracks = track_scores(faces[faces["utterance_id"] == 1])
    assert list(tracks["track_id"]) == [0, 1, 2] and list(tracks["n_frames"]) == [3, 3, 1]
    assert speaker_track(tracks, 2) == 1 and speaker_track(tracks, 1) == 1
    out = summarize(_clips(), faces, _segments(), CFG).set_index("sample_id")
    assert list(out.index) == ["train/dia4_utt1", "train/dia4_utt2"]  # quarantined samples absent
    s = out.loc["train/dia4_utt1"]
    assert s["status"] == "ok" and s["face_emotion"] == "joy" and s["main_track_id"] == 1
    assert s["n_tracks"] == 3 and s["n_faces"] == 2 and s["n_detections"] == 7 and s["n_context_detections"] == 2
    np.testing.assert_allclose(sum(s["distribution"]), 1.0, rtol=1e-5)
    # utterance 2 has no face: neutral + no_face, although its context has faces
    n = out.loc["train/dia4_utt2"]
    assert n["status"] == "no_face" and n["face_emotion"] == "neutral" and n["distribution"] is None
    assert n["n_frames_sampled"] == 10 and n["n_context_detections"] == 9


def test_unprocessed_target_is_no_frames():
    segs = _segments()
    segs.loc[segs["utterance_id"] == 2, ["status", "status_detail"]] = ["failed", "IndexError: boom"]
    out = summarize(_clips(), pd.DataFrame([_face(1, 0, [0, 0, 40, 40], "joy", 0)]), segs,
                    {**CFG, "no_face_emotion": "sadness"}).set_index("sample_id")
    assert out.loc["train/dia4_utt2", "status"] == "no_frames"
    assert out.loc["train/dia4_utt2", "face_emotion"] == "sadness"


def test_sample_indices():
    assert sample_indices(3, 10, 24.0, 0) == list(range(3, 11))
    assert sample_indices(3, 10, 24.0, 48.0) == list(range(3, 11))
    idx = sample_indices(6, 78, 24000 / 1001, 4.0)
    assert idx[0] == 6 and idx[-1] <= 78 and len(idx) == 13
    assert np.allclose(np.diff(idx), 6, atol=1)
    assert sample_indices(5, 4, 24.0, 4.0) == []


def test_compose_sample_indexes_segments_without_recomputation():
    faces = pd.DataFrame([_face(0, 0, [0, 0, 1, 1], "joy", 0), _face(1, 3, [0, 0, 1, 1], "joy", 0),
                          _face(1, 9, [0, 0, 1, 1], "joy", 0)])
    segs = _clips().iloc[1]["segments"]
    out = compose_sample(faces, segs, "train", 4)
    assert list(out["sample_frame"]) == [0, 41, 47]
