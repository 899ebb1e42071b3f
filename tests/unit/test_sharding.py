"""Stable sharding."""

import pytest

from ecem.sharding import dialogue_key, shard_of


def test_every_key_in_exactly_one_shard_and_stable():
    keys = [dialogue_key("train", d) for d in range(500)]
    shards = [shard_of(k, 7) for k in keys]
    assert all(0 <= s < 7 for s in shards)
    assert shards == [shard_of(k, 7) for k in keys]
    assert len(set(shards)) == 7  # 500 keys spread over all shards
    assert shard_of("train/dia0", 7) == 3  # CRC-based, identical on every machine and run


def test_bad_shard_count():
    with pytest.raises(ValueError):
        shard_of("x", 0)
