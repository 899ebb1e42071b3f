"""ecem.features.batching.pack_batches: frames cut into fixed-size batches in source order."""

from __future__ import annotations

import numpy as np
import pytest

from ecem.features.batching import Batch, Decoded, Failed, pack_batches


def source(name: str, n: int) -> Decoded:
    """`n` frames of source `name`; each frame's pixel value is its index, to follow it."""
    return Decoded([(name, k) for k in range(n)], np.arange(n).reshape(n, 1))


def pack(sources, batch_size):
    return list(pack_batches(sources, batch_size, np.concatenate))


def test_no_sources_no_batches():
    assert pack([], 4) == []


def test_exact_multiple_fills_every_batch():
    batches = pack([source("a", 4), source("b", 4)], 4)
    assert [b.keys for b in batches] == [[("a", k) for k in range(4)], [("b", k) for k in range(4)]]
    assert all(isinstance(b, Batch) and b.pixels.shape == (4, 1) for b in batches)


def test_sources_share_a_batch_and_the_last_holds_the_remainder():
    batches = pack([source("a", 3), source("b", 5), source("c", 1)], 4)
    assert [len(b.keys) for b in batches] == [4, 4, 1]
    assert batches[0].keys == [("a", 0), ("a", 1), ("a", 2), ("b", 0)]
    assert batches[1].keys == [("b", 1), ("b", 2), ("b", 3), ("b", 4)]
    assert batches[2].keys == [("c", 0)]
    for batch in batches:  # every frame's pixels travel with its key
        assert batch.pixels[:, 0].tolist() == [k for _, k in batch.keys]


def test_a_source_longer_than_several_batches_is_sliced():
    batches = pack([source("a", 10)], 3)
    assert [len(b.keys) for b in batches] == [3, 3, 3, 1]
    assert np.concatenate([b.pixels for b in batches])[:, 0].tolist() == list(range(10))


def test_batch_size_one():
    batches = pack([source("a", 2), source("b", 1)], 1)
    assert [b.keys for b in batches] == [[("a", 0)], [("a", 1)], [("b", 0)]]


def test_a_failed_source_passes_on_at_once_before_the_frames_waiting():
    broken = Decoded([("b", 0), ("b", 1)], None, "corrupt")
    out = pack([source("a", 2), broken, source("c", 2)], 3)
    assert isinstance(out[0], Failed) and out[0].keys == [("b", 0), ("b", 1)] and out[0].error == "corrupt"
    assert [b.keys for b in out[1:]] == [[("a", 0), ("a", 1), ("c", 0)], [("c", 1)]]


def test_only_failed_sources():
    out = pack([Decoded([("a", 0)], None, "x")], 2)
    assert out == [Failed([("a", 0)], "x")]


def test_concat_runs_only_where_a_batch_spans_sources():
    calls = []

    def concat(chunks):
        calls.append(len(chunks))
        return np.concatenate(chunks)

    list(pack_batches([source("a", 6)], 3, concat))
    assert calls == []
    list(pack_batches([source("a", 2), source("b", 2)], 3, concat))
    assert calls == [2]


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        pack([source("a", 1)], 0)
