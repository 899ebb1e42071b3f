"""Stable sharding: which shard of N a key belongs to, the same on every machine and run.

Used wherever a stage fans out into independent jobs (clip rendering, transcription, features)
so a cluster can run shards in parallel while a laptop runs them one after another. Python's
`hash()` is salted per process, so a CRC of the key is used instead.
"""

from __future__ import annotations

import zlib


def shard_of(key: str, n_shards: int) -> int:
    """Shard index in [0, n_shards) for `key`."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    return zlib.crc32(key.encode("utf-8")) % n_shards


def dialogue_key(meld_split: str, dialogue_id: int) -> str:
    """The key that keeps a dialogue's utterances and samples in one shard."""
    return f"{meld_split}/dia{int(dialogue_id)}"
