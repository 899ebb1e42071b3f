"""The report's banner: what makes its numbers not paper results, read from the artifacts'
own metadata and model cards and from the metrics' recorded settings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ecem.evaluate.metrics.embedding import BUNDLED_ENCODER


def metadata_records(obj: Any, where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every mapping in an artifact's metadata tree, with its path (`source › key[0] › key`)."""
    if isinstance(obj, Mapping):
        yield where, obj
        for k, v in obj.items():
            yield from metadata_records(v, f"{where} › {k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from metadata_records(v, f"{where}[{i}]")


def _model_name(record: Mapping[str, Any]) -> str:
    return next((str(record[k]) for k in ("name_or_path", "model_id", "model", "name", "path") if record.get(k)),
                "unnamed model")


def banner_items(metadata_sources: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]],
                 is_demo: bool) -> list[dict[str, str]]:
    """What makes these numbers not paper results: the demo corpus, random-weight models and
    real stand-ins for the paper's models (from the artifacts' own metadata and model cards),
    metrics that ran the bundled encoder in place of the paper's (its card, `BUNDLED_ENCODER`),
    and missing metrics."""
    records = [r for where, meta in metadata_sources.items() for r in metadata_records(meta, where)]
    # random-weight models, and real models standing in for the paper's (a bundled model's card)
    randoms = [{"where": where, "model": _model_name(rec)} for where, rec in records
               if rec.get("random_weights") is True]
    stand_ins = {str(rec["model"]): str(rec["stand_in_for"]) for _, rec in records
                 if rec.get("stand_in_for") and rec.get("model")}
    if any(r["model"] != "unnamed model" for r in randoms):
        randoms = [r for r in randoms if r["model"] != "unnamed model"]
    items: list[dict[str, str]] = []
    if is_demo:
        items.append({"kind": "demo corpus", "where": "",
                      "text": "the data are the project's generated MELD-format demo (synthetic speech "
                              "and scenes), not MELD/ECEM."})
    seen = set()
    for r in randoms:
        key = (r["model"], r["where"].split(" › ")[0])
        if key not in seen:
            seen.add(key)
            items.append({"kind": "random weights", "text": r["model"], "where": r["where"]})
    items += [{"kind": "stand-in model", "where": "", "text": f"{model} (real, pretrained) stands in for {paper}"}
              for model, paper in sorted(stand_ins.items())]
    standins: dict[str, str] = {}
    for data in metrics.values():
        for key, entry in data["metrics"].items():
            settings = entry.get("settings", "")
            paper = BUNDLED_ENCODER.stand_in(key, settings)
            if paper:
                standins[key] = f"{entry['name']} uses {BUNDLED_ENCODER.model}, a stand-in for the paper's {paper}"
            if entry.get("status") == "unavailable":
                standins[key] = f"{entry['name']} unavailable: {entry.get('reason')}"
    items += [{"kind": "stand-in / missing metric", "text": v, "where": ""} for v in standins.values()]
    return items
