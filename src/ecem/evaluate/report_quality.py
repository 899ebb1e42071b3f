"""The report's data-quality section: each stage's quality JSON sorted into what people read
(facts, counts by status or reason, per-item records, collapsed details).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ecem.evaluate.report_html import frame_view


DETAIL_ROWS = 30  # rows of a detail table shown before "… N more"


def _is_counts(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in obj.values())


def _is_records(obj: Any) -> bool:
    """One entry per item, all with the same fields (experiments, splits): a table, one row each."""
    if not (isinstance(obj, Mapping) and len(obj) > 1 and all(isinstance(v, Mapping) for v in obj.values())):
        return False
    return len({tuple(sorted(v)) for v in obj.values()}) == 1


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of `a › b` keys; lists shown as text."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix} › {key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        elif isinstance(value, list):
            flat[name] = json.dumps(value) if any(isinstance(x, (Mapping, list)) for x in value) else (
                ", ".join(map(str, value)) or "none")
        else:
            flat[name] = value
    return flat


def _walk_quality(obj: Any, label: str, view: dict[str, list]) -> None:
    """Sort a quality JSON into what the template shows: facts (one value each), counts (by
    status or reason), records (one row per experiment, split, …), and collapsed details
    (settings, and lists of affected samples)."""
    name = label.rsplit(" › ", 1)[-1]
    if name == "settings" and isinstance(obj, Mapping):
        rows = pd.DataFrame({"setting": list(_flatten(obj)), "value": list(_flatten(obj).values())})
        view["details"].append({**frame_view(rows), "label": label, "total": len(rows), "more": 0})
    elif _is_counts(obj):
        view["counts"].append({"label": label, "counts": list(obj.items())})
    elif _is_records(obj):
        rows = pd.DataFrame([{name or "name": key, **_flatten(value)} for key, value in obj.items()])
        view["records"].append({**frame_view(rows), "label": label})
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            _walk_quality(value, f"{label} › {key}" if label else str(key), view)
    elif isinstance(obj, list) and obj and all(isinstance(x, Mapping) for x in obj):
        rows = pd.DataFrame([_flatten(x) for x in obj[:DETAIL_ROWS]])
        view["details"].append({**frame_view(rows), "label": label, "total": len(obj),
                                "more": max(0, len(obj) - DETAIL_ROWS)})
    elif isinstance(obj, list):
        view["facts"].append((label, ", ".join(map(str, obj)) or "none"))
    else:
        view["facts"].append((label, f"{obj:.4g}" if isinstance(obj, float) else obj))


def quality_view(quality: Mapping[str, str | Path]) -> list[dict[str, Any]]:
    """Each stage's quality JSON as people read it: its facts, its counts by status or reason
    (one small table each), per-item records, and its detail rows (collapsed)."""
    out = []
    for name, path in quality.items():
        stage: dict[str, Any] = {"name": name, "path": str(path), "error": None,
                                 "facts": [], "counts": [], "records": [], "details": []}
        p = Path(path)
        if not p.is_file():
            stage["error"] = f"{p} (stage not run)"
        else:
            try:
                _walk_quality(json.loads(p.read_text()), "", stage)
            except json.JSONDecodeError as err:
                stage["error"] = f"{p} is not valid JSON ({err})"
        out.append(stage)
    return out
