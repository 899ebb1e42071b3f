"""What a feature stage's quality summary says about its samples: every sample has tokens or a
reason, counted by kind. Shared by the video and audio token stages, whose shard stats carry the
same `excluded` / `with_features` / `padded` fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def sample_accounting(shard_stats: Sequence[Mapping[str, Any]], n_clips: int,
                      reason_kind: Callable[[str], str]) -> dict[str, Any]:
    """`samples`, `with_features`, `excluded` (count, by reason kind, per sample), `padded_samples`
    and `accounted` (every sample has tokens or a reason) over a stage's shards."""
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
