"""What the video and audio token stages share after extraction: gathering their shards into
one token file (+ its array) and the quality summary's account of the samples — every sample has
tokens or a reason, counted by kind. Both stages' shard stats carry the same `excluded` /
`with_features` / `padded` fields."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ecem.artifacts import read_table, write_json
from ecem.tokens import concat_features, read_settings, write_token_array


def reason_kind(reason: str) -> str:
    """What an exclusion reason counts as: its words before the first ':' and before any ' ('
    note (`decode failed (x.mp4): ...` → `decode failed`, `corrupt: ...` → `corrupt`)."""
    return reason.split(":", 1)[0].split(" (", 1)[0].strip() or "unknown"


def sample_accounting(shard_stats: Sequence[Mapping[str, Any]], n_clips: int) -> dict[str, Any]:
    """`samples`, `with_features`, `excluded` (count, by :func:`reason_kind`, per sample),
    `padded_samples` and `accounted` (every sample has tokens or a reason) over a stage's shards."""
    excluded: dict[str, str] = {}
    for s in shard_stats:
        excluded.update(s["excluded"])
    by_kind: dict[str, int] = {}
    for reason in excluded.values():
        by_kind[reason_kind(reason)] = by_kind.get(reason_kind(reason), 0) + 1
    with_features = sum(int(s["with_features"]) for s in shard_stats)
    return {
        "samples": n_clips,
        "with_features": with_features,
        "excluded": {"count": len(excluded), "by_reason": dict(sorted(by_kind.items())),
                     "samples": dict(sorted(excluded.items()))},
        "padded_samples": sum(int(s["padded"]) for s in shard_stats),
        "accounted": with_features + len(excluded) == n_clips,
    }


def gather_token_shards(token_parts: Sequence[str], stats_parts: Sequence[str], clips_path: str,
                        out_tokens: str, out_array: str, out_quality: str,
                        quality: Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any], int], dict[str, Any]],
                        *, schema: pa.Schema, stage: str) -> dict[str, Any]:
    """Shards of `stage` (all extracted with the same settings) → one token file, its token array
    and the quality summary `quality(stats, settings, n_clips)`, checked to count the rows written."""
    settings = [read_settings(p, stage) for p in token_parts]
    for p, s in zip(token_parts[1:], settings[1:]):
        if s != settings[0]:
            raise ValueError(f"{p} was extracted with other settings than {token_parts[0]}")
    n = concat_features(token_parts, out_tokens, settings[0], schema=schema, stage=stage)
    write_token_array(out_tokens, out_array)
    stats = [json.loads(Path(p).read_text()) for p in stats_parts]
    summary = quality(stats, settings[0], len(read_table(clips_path, columns=["sample_id"])))
    if summary["with_features"] != n:
        raise RuntimeError(f"shards hold {n} rows but their stats say {summary['with_features']}")
    write_json(summary, out_quality)
    return summary
