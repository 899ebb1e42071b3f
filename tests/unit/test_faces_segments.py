"""The face stage reads each segment through its `source_frames`: the frames it detects on are
the frames the rendered clip shows, also where the dataset stage resampled a clip's frame rate.
Real MTCNN + FER2013 on a real clip of the demo's scene (a moving photographed face)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from ecem.corpus.scene import FacePlan, face_box, render_frame
from ecem.artifacts import read_metadata, write_table
from ecem.faces.stage import FacePipeline, process_segments, run_faces, sample_indices
from ecem.faults import EnvironmentFault
from ecem.faces.track import box_iou
from ecem.ffmpeg import run_ffmpeg
from tests.helpers import REPO

W, H, FPS = 320, 240, 24.0
FACE = [FacePlan(x_phase=0.1, y=H * 0.45, speed_px=3.0, scale=0.62)]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """48 frames of the demo's scene: the face moves 3 px a frame."""
    path = tmp_path_factory.mktemp("faces") / "dia0_utt0.mp4"
    frames = (render_frame(3, FACE, i, W, H).tobytes() for i in range(48))
    run_ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-framerate", "24", "-i", "pipe:0",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", str(path)],
               frames=frames)
    return path


def test_faces_are_found_in_the_source_frames_the_segment_shows(source):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["features"]["faces"]
    # a resampled segment: source frame 0 held for 6 frames, then a jump to frame 30
    shown = [0] * 6 + list(range(30, 48))
    segments = pd.DataFrame([{"meld_split": "train", "dialogue_id": 0, "utterance_id": 0, "status": "ok",
                              "video_path": str(source), "source_frames": shown, "render_fps": FPS,
                              "first_frame": 0, "fps": FPS}])
    faces, infos = process_segments(FacePipeline(cfg), segments)
    positions = sample_indices(0, len(shown) - 1, FPS, float(cfg["sample_fps"]))
    assert infos.iloc[0]["status"] == "ok" and infos.iloc[0]["n_frames_sampled"] == len(positions)
    assert sorted(faces["segment_frame"]) == positions  # one face in every sampled frame
    for row in faces.itertuples():
        assert row.frame_idx == shown[row.segment_frame] and row.t_s == pytest.approx(row.segment_frame / FPS)
        planted = np.array([face_box(FACE[0], row.frame_idx, W, H)], dtype=float)
        assert box_iou(planted, np.array([row.box], dtype=float))[0, 0] >= 0.5, row.frame_idx


def test_an_io_error_reading_a_segment_fails_the_job(tmp_path):
    """EIO while reading (the kernel's, from /proc/self/mem) is no `failed` segment: it raises."""
    (tmp_path / "eio.mp4").symlink_to("/proc/self/mem")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["features"]["faces"]
    segments = pd.DataFrame([{"meld_split": "train", "dialogue_id": 0, "utterance_id": 0, "status": "ok",
                              "video_path": str(tmp_path / "eio.mp4"), "source_frames": [0, 1, 2],
                              "render_fps": FPS, "first_frame": 0, "fps": FPS}])
    with pytest.raises(EnvironmentFault, match="Input/output error"):
        process_segments(FacePipeline(cfg), segments)


def test_two_identical_runs_write_identical_bytes(source, tmp_path):
    """Timings go to the log, not into faces.parquet or face_segments.parquet."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["features"]["faces"]
    segments = tmp_path / "segments.parquet"
    write_table(pd.DataFrame([{"meld_split": "train", "dialogue_id": 0, "utterance_id": 0, "status": "ok",
                               "video_path": str(source), "source_frames": list(range(48)), "render_fps": FPS,
                               "first_frame": 0, "fps": FPS}]), segments, "dataset")
    outputs = []
    for run in ("a", "b"):
        faces, segs = tmp_path / f"{run}.faces.parquet", tmp_path / f"{run}.segments.parquet"
        run_faces(str(segments), cfg, 0, 1, str(faces), str(segs))
        outputs.append((faces.read_bytes(), segs.read_bytes()))
        assert "timing" not in read_metadata(faces)["settings"]
    assert outputs[0] == outputs[1]
