"""Per-sample facial emotion: the `E_cls` of the target utterance, as the FAME-Net prompt uses it.

Rule (documented in the README):

1. Only the sample's **target utterance segment** counts (the last segment of its prefix clip);
   context utterances show other speakers.
2. **Speaker face**: among the target segment's tracks, the one with the largest
   `Σ over its frames of (box area / frame area) × centrality`, where centrality is
   `1 − distance(box centre, frame centre) / half the frame diagonal`. Summing over frames favours
   the face that is on screen longest, largest and most central — the usual shot of the person
   speaking. Tracks with fewer than `min_track_frames` detections are only used when no track
   reaches it. All tracks are kept in faces.parquet and listed in the summary.
3. **E_cls** = the MELD emotion with the highest mean probability over the speaker track's frames
   (`distribution`, in MELD_LABELS order; ties go to the earlier label).
4. **No face**: a target segment whose sampled frames hold no face gets `status = no_face` and
   `face_emotion = no_face_emotion` (config; `neutral` by default — "no visible expression"), with
   an empty distribution. A target segment that could not be read gets `status = no_frames` and the
   same fallback emotion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ecem.meld import UTTERANCE_KEYS
from ecem.faces.labels import MELD_LABELS



def track_scores(faces: pd.DataFrame) -> pd.DataFrame:
    """Per track of one segment's detections: n_frames, speaker score, mean distribution."""
    boxes = np.stack(faces["box"].to_numpy()).astype(np.float64)
    w = faces["frame_width"].to_numpy(np.float64)
    h = faces["frame_height"].to_numpy(np.float64)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (w * h)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    dist = np.hypot(cx - w / 2, cy - h / 2) / (np.hypot(w, h) / 2)
    per = pd.DataFrame({"track_id": faces["track_id"].to_numpy(), "score": area * np.clip(1 - dist, 0, 1)})
    probs = np.stack(faces["emotion_probs"].to_numpy()).astype(np.float64)
    rows = []
    for tid, idx in per.groupby("track_id").indices.items():
        dist_mean = probs[idx].mean(axis=0)
        rows.append({"track_id": int(tid), "n_frames": len(idx), "score": float(per["score"].iloc[idx].sum()),
                     "distribution": dist_mean, "face_emotion": MELD_LABELS[int(np.argmax(dist_mean))]})
    return pd.DataFrame(rows).sort_values("track_id", ignore_index=True)


def speaker_track(tracks: pd.DataFrame, min_track_frames: int) -> int:
    """Track id of the speaker's face (see the module rule)."""
    pool = tracks[tracks["n_frames"] >= min_track_frames]
    if pool.empty:
        pool = tracks
    best = pool["score"].max()
    return int(pool.loc[pool["score"] >= best - 1e-12, "track_id"].min())


def summarize(clips: pd.DataFrame, faces: pd.DataFrame, segments: pd.DataFrame,
              cfg: Mapping[str, Any]) -> pd.DataFrame:
    """One row per usable sample (`clips.status == ok`)."""
    fallback = cfg["no_face_emotion"]
    by_segment = {k: g for k, g in faces.groupby(UTTERANCE_KEYS)} if len(faces) else {}
    seg_info = segments.set_index(UTTERANCE_KEYS)
    rows = []
    for clip in clips[clips["status"] == "ok"].itertuples(index=False):
        key = (clip.meld_split, int(clip.dialogue_id), int(clip.utterance_id))
        row: dict[str, Any] = {
            "sample_id": clip.sample_id, "meld_split": key[0], "dialogue_id": key[1], "utterance_id": key[2],
            "face_emotion": fallback, "distribution": None, "main_track_id": -1, "n_faces": 0,
            "n_detections": 0, "n_tracks": 0, "n_frames_sampled": 0, "face_frames": 0, "tracks": [],
            "n_context_detections": int(sum(len(by_segment.get((key[0], key[1], int(s["utterance_id"])), ()))
                                            for s in clip.segments if int(s["utterance_id"]) != key[2])),
        }
        if key not in seg_info.index or seg_info.loc[key, "status"] != "ok":
            detail = "" if key not in seg_info.index else seg_info.loc[key, "status_detail"]
            rows.append({**row, "status": "no_frames", "status_detail": detail or "target segment not processed"})
            continue
        row["n_frames_sampled"] = int(seg_info.loc[key, "n_frames_sampled"])
        target = by_segment.get(key)
        if target is None or target.empty:
            rows.append({**row, "status": "no_face",
                         "status_detail": f"no face in {row['n_frames_sampled']} sampled frames of the target "
                                          f"utterance; E_cls falls back to {fallback}"})
            continue
        tracks = track_scores(target)
        main = speaker_track(tracks, int(cfg["min_track_frames"]))
        chosen = tracks.set_index("track_id").loc[main]
        row.update(
            face_emotion=chosen["face_emotion"],
            distribution=[float(v) for v in chosen["distribution"]],
            main_track_id=main,
            n_faces=int(target.groupby("segment_frame").size().max()),
            n_detections=len(target),
            n_tracks=len(tracks),
            face_frames=int(target["segment_frame"].nunique()),
            tracks=[{"track_id": int(t.track_id), "n_frames": int(t.n_frames), "score": float(t.score),
                     "face_emotion": t.face_emotion} for t in tracks.itertuples(index=False)],
            status="ok", status_detail="",
        )
        rows.append(row)
    columns = ["sample_id", "face_emotion", "distribution", "status", "status_detail", "meld_split",
               "dialogue_id", "utterance_id", "main_track_id", "n_faces", "n_detections", "n_tracks",
               "n_frames_sampled", "face_frames", "n_context_detections", "tracks"]
    return pd.DataFrame(rows, columns=columns)
