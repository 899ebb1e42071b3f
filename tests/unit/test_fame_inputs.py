"""What a FAME-Net job reads (`ecem.fame.inputs.FameInputs`): the examples of its splits, and the
video and audio tokens its experiment's modalities call for, decided by the config recorded in
the examples file, not by the prompt text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecem.artifacts import write_table
from ecem.fame.inputs import FameInputs
from ecem.features import video
from ecem.tokens import write_features, write_token_array

IDS = ["s0", "s1", "s2", "s3"]
SPLITS = ["train", "train", "val", "test"]
VIDEO = {"video": True, "text": True, "face": False}


def _tokens(path: Path, ids: list[str], shape: tuple[int, int]) -> str:
    rng = np.random.default_rng(0)
    rows = [{"sample_id": sid, "meld_split": "train", "dialogue_id": 0, "utterance_id": i,
             "tokens": rng.standard_normal(shape).astype("<f2").tobytes(), "shape": list(shape),
             "n_frames_clip": 1, "n_frames_sampled": 1, "padding": "none", "frame_positions": [0]}
            for i, sid in enumerate(ids)]
    write_features(rows, path, {}, schema=video.SCHEMA, stage=video.STAGE)
    write_token_array(path)
    return str(path)


def _examples(path: Path, experiment: dict, has_audio: list[bool] | None = None) -> str:
    table = pd.DataFrame({"sample_id": IDS, "split": SPLITS, "emotion": "joy", "speaker": "Joey",
                          "prompt": "p", "reference": "r", "has_audio": has_audio or [False] * len(IDS)})
    write_table(table, path, "fame", {"modalities": experiment})
    return str(path)


def test_video_run_reads_its_splits_tokens_and_no_audio(tmp_path: Path) -> None:
    features = _tokens(tmp_path / "clip.parquet", IDS, (3, 5))
    inputs = FameInputs.load(_examples(tmp_path / "ex.parquet", VIDEO), features, None, ("train", "val"))
    assert list(inputs.examples["sample_id"]) == ["s0", "s1", "s2"]
    assert list(inputs.examples.index) == [0, 1, 2]
    assert sorted(inputs.videos) == ["s0", "s1", "s2"] and inputs.audios is None
    assert inputs.splits == dict(zip(IDS, SPLITS))  # every example, for training's split check
    assert list(inputs.split("val")["sample_id"]) == ["s2"]
    assert inputs.modalities.video and not inputs.modalities.audio and inputs.vision_dim == 5


def test_run_without_video_reads_no_video_but_keeps_the_projector_width(tmp_path: Path) -> None:
    features = _tokens(tmp_path / "clip.parquet", IDS, (3, 5))
    blind = {**VIDEO, "video": False}
    inputs = FameInputs.load(_examples(tmp_path / "ex.parquet", blind), features, None, ("test",))
    assert inputs.videos == {} and inputs.vision_dim == 5
    assert FameInputs.load(_examples(tmp_path / "ex2.parquet", blind), None, None, ("test",)).vision_dim == 1


def test_no_rows_of_the_splits_reads_no_tokens(tmp_path: Path) -> None:
    features = _tokens(tmp_path / "clip.parquet", IDS, (3, 5))
    inputs = FameInputs.load(_examples(tmp_path / "ex.parquet", VIDEO), features, None, ("nope",))
    assert inputs.examples.empty and inputs.videos == {}


def test_missing_video_tokens_are_an_error(tmp_path: Path) -> None:
    features = _tokens(tmp_path / "clip.parquet", IDS[:2], (3, 5))
    with pytest.raises(KeyError, match="s2"):
        FameInputs.load(_examples(tmp_path / "ex.parquet", VIDEO), features, None, ("train", "val"))


def test_audio_run_reads_the_tokens_of_the_samples_with_audio(tmp_path: Path) -> None:
    hears = {**VIDEO, "video": False, "audio": True}
    audio = _tokens(tmp_path / "audio.parquet", ["s0", "s2"], (4, 6))
    examples = _examples(tmp_path / "ex.parquet", hears, [True, False, True, False])
    inputs = FameInputs.load(examples, None, audio, ("train", "val"))
    assert inputs.audios is not None and sorted(inputs.audios) == ["s0", "s2"]
    none_heard = FameInputs.load(examples, None, audio, ("test",))  # s3 has no audio: an empty store
    assert none_heard.audios is not None and len(none_heard.audios) == 0
    with pytest.raises(ValueError, match="no audio features"):
        FameInputs.load(examples, None, None, ("train",))
    short = _tokens(tmp_path / "short.parquet", ["s0"], (4, 6))
    with pytest.raises(KeyError, match="s2"):
        FameInputs.load(examples, None, short, ("val",))


def test_audio_file_is_ignored_by_a_run_that_does_not_hear(tmp_path: Path) -> None:
    audio = _tokens(tmp_path / "audio.parquet", IDS, (4, 6))
    examples = _examples(tmp_path / "ex.parquet", {**VIDEO, "video": False}, [True] * 4)
    assert FameInputs.load(examples, None, audio, ("train",)).audios is None
