"""The video-token array and its lazy reader: same tokens as the Parquet blobs, read per sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecem.fame.data import video_token_counts
from ecem.fame.inputs import norm_sample
from ecem.features import video
from ecem.tokens import TokenStore, load_tokens, token_array_path, write_features, write_token_array

VIDEO = {"schema": video.SCHEMA, "stage": video.STAGE}  # the video token file's columns and stage


def _rows(n: int, shape: tuple[int, int], seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        tokens = rng.standard_normal(shape).astype("<f2")
        rows.append({"sample_id": f"train/dia{i // 3}_utt{i % 3}", "meld_split": "train", "dialogue_id": i // 3,
                     "utterance_id": i % 3, "tokens": tokens.tobytes(), "shape": list(shape),
                     "n_frames_clip": 10, "n_frames_sampled": 4, "padding": "none",
                     "frame_positions": [0, 3, 6, 9]})
    return rows


@pytest.fixture
def features(tmp_path: Path) -> Path:
    path = tmp_path / "clip.parquet"
    write_features(_rows(11, (7, 5)), path, {"layout": {"num_frames": 4, "num_patches": 3}}, rows_per_group=4,
                   **VIDEO)
    write_token_array(path)
    return path


def test_store_reads_exactly_the_parquet_tokens(features: Path) -> None:
    assert token_array_path(features).name == "clip.tokens.npy"
    whole, store = load_tokens(features), TokenStore(features)
    assert list(store) == list(whole) and len(store) == 11 and store.shape == (7, 5)
    for sid, tokens in whole.items():
        got = store[sid]
        assert got.dtype == np.dtype("<f2") and np.array_equal(got, tokens)
    some = TokenStore(features, ["train/dia1_utt2", "train/nope"])
    assert list(some) == ["train/dia1_utt2"] and "train/nope" not in some
    with pytest.raises(KeyError):
        some["train/dia0_utt0"]


def test_store_refuses_an_array_of_another_file(features: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / "clip.parquet"
    other.parent.mkdir()
    write_features(_rows(5, (7, 5)), other, {}, **VIDEO)
    token_array_path(other).write_bytes(token_array_path(features).read_bytes())  # 11 rows, not 5
    with pytest.raises(ValueError, match="rerun the rule that wrote them"):
        TokenStore(other)


def test_a_row_without_a_column_of_the_contract_is_refused(tmp_path: Path) -> None:
    row = _rows(1, (7, 5))[0]
    del row["padding"]  # Arrow would store it as null without a word
    with pytest.raises(ValueError, match="column 'padding' is missing"):
        write_features([row], tmp_path / "clip.parquet", {}, **VIDEO)
    assert not (tmp_path / "clip.parquet").exists()


def test_array_needs_one_shape_and_handles_an_empty_file(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.parquet"
    write_features(_rows(2, (7, 5)) + _rows(1, (6, 5)), mixed, {}, **VIDEO)
    with pytest.raises(ValueError, match="shapes differ"):
        write_token_array(mixed)
    empty = tmp_path / "empty.parquet"
    write_features([], empty, {}, **VIDEO)
    write_token_array(empty)
    assert len(TokenStore(empty)) == 0


def test_token_counts_and_the_norm_sample_are_bounded(features: Path) -> None:
    store = TokenStore(features)
    assert video_token_counts(store) == dict.fromkeys(store, 7)
    assert video_token_counts({"a": np.zeros((3, 2))}) == {"a": 3}
    ids = sorted(store)
    sample = norm_sample(store, ids, limit=4)
    assert sample.shape == (4 * 7, 5)
    picked = [ids[i] for i in (0, 3, 7, 10)]  # evenly spaced over the sorted ids, both ends kept
    assert np.array_equal(sample, np.concatenate([store[s] for s in picked]))
    assert norm_sample(store, ["train/nope"]) is None
