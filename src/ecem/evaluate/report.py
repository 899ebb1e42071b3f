"""`results/report.html`: one self-contained page (figures embedded as base64 PNG, no external
assets) with a banner naming random/stand-in models, dataset statistics (the paper's Figures 3
and 4), every stage's data-quality summary, the metric tables evaluate_tables wrote, and a
gallery of samples.

The page is the Jinja2 template `templates/report.html.j2` (autoescaped); this module gathers
the artifacts and builds the dataset and table sections, the banner (`report_banner`), the
quality section (`report_quality`) and the gallery (`report_gallery`) build theirs. Every
section tolerates missing artifacts: it says what is absent instead of failing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecem.artifacts import atomic_path, read_metadata, read_table
from ecem.csvsafe import read_csv
from ecem.evaluate.report_banner import banner_items
from ecem.evaluate.report_gallery import gallery_view, pick_gallery
from ecem.evaluate.report_html import frame_view, png_data_uri, render
from ecem.evaluate.report_quality import quality_view
from ecem.evaluate.tables import TABLE_NAMES, TABLE_TITLES, display_table, load_card, load_metrics, settings_notes

log = logging.getLogger(__name__)


def dataset_view(stats: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Figures 3 and 4 of the paper (emotion proportions, cause length per emotion) and counts,
    from the dataset stage's statistics.json (`ecem.dataset.statistics`)."""
    if stats is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = list(stats["by_emotion"])
    counts = [stats["by_emotion"][e]["samples"] for e in order]
    share = [stats["by_emotion"][e]["share"] * 100 for e in order]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(order, share, color="#4c72b0")
    for i, (n, pct) in enumerate(zip(counts, share, strict=True)):
        ax.text(i, pct, f"{pct:.0f}%\n(n={n})", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("% of samples")
    ax.set_title("Emotion proportions (cf. paper Fig. 3)")
    ax.set_ylim(0, max(share) * 1.3)
    ax.tick_params(axis="x", rotation=30)
    figures = [{"uri": png_data_uri(fig), "alt": "Figure 3: emotion proportions"}]

    fig, ax = plt.subplots(figsize=(5, 3.2))
    boxes = [{"label": e, "med": w["median"], "q1": w["q1"], "q3": w["q3"], "whislo": w["min"],
              "whishi": w["max"], "mean": w["mean"], "fliers": []}
             for e, w in ((e, stats["by_emotion"][e]["cause_words"]) for e in order)]
    ax.bxp(boxes, showmeans=True)
    ax.tick_params(axis="x", rotation=30)
    ax.set_ylabel("cause length (words; whiskers: min, max)")
    ax.set_title("Cause length per emotion (cf. paper Fig. 4)")
    figures.append({"uri": png_data_uri(fig), "alt": "Figure 4: cause length per emotion"})

    splits = pd.DataFrame([{"split": s, **v} for s, v in stats["by_split"].items()])
    emotions = pd.DataFrame({"emotion": order, "samples": counts, "share %": np.round(share, 1),
                             "mean cause words": [stats["by_emotion"][e]["cause_words"]["mean"] for e in order]})
    return {"figures": figures, "splits": frame_view(splits), "emotions": frame_view(emotions, 3)}


def tables_view(tables: Mapping[str, str]) -> list[dict[str, Any]]:
    """The tables evaluate_tables wrote (`results/tables/<name>.csv`), shown as in their .md."""
    out = []
    for name in TABLE_NAMES:
        path = tables.get(name)
        if path is None or not Path(path).is_file():
            continue
        try:
            numeric = read_csv(path)
        except pd.errors.EmptyDataError:
            numeric = pd.DataFrame()
        out.append({"name": name, "title": TABLE_TITLES[name], **frame_view(display_table(name, numeric))})
    return out


def _read(path: str | Path | None) -> pd.DataFrame | None:
    if path is None or not Path(path).is_file():
        return None
    return read_table(path)


def build_report(
    *,
    annotations: str | None,
    statistics: str | None,
    clips: str | None,
    quality: Mapping[str, str],
    metrics: Mapping[str, str],
    predictions: Mapping[str, str],
    cards: Mapping[str, str],
    transcripts: str | None,
    face_summary: str | None,
    model_files: Mapping[str, str],
    tables: Mapping[str, str],
    cfg: Mapping[str, Any],
    splits: Sequence[str],
    unrun_baselines: Mapping[str, str],
    is_demo: bool,
    out: str,
) -> None:
    """Gather every section's data and render templates/report.html.j2 into `out`."""
    ann = _read(annotations)
    metric_data = load_metrics([m for m in metrics.values() if Path(m).is_file()])
    pred_dfs = {r: read_table(p) for r, p in predictions.items() if Path(p).is_file()}
    # Where the random-model banner looks: each artifact that records the model it came from.
    meta_sources: dict[str, Any] = {
        name: read_metadata(path) for name, path in model_files.items() if Path(path).is_file()
    }
    meta_sources |= {f"quality {name}": json.loads(Path(path).read_text())
                     for name, path in quality.items() if Path(path).is_file()}
    for run, path in cards.items():
        card = load_card(path)
        if card is not None:
            meta_sources[f"run card {run}"] = card
    for run, path in predictions.items():
        if Path(path).is_file():
            meta_sources[f"predictions {run}"] = read_metadata(path)

    size_note = (f"Evaluated splits: {', '.join(splits)}. Samples scored per run: "
                 + ", ".join(f"{r} {d['n_samples']}" for r, d in metric_data.items()) + ".")
    n_test = int((ann["split"] == "test").sum()) if ann is not None else 0
    if ann is not None and n_test < 30:
        size_note += (f" The test split has only {n_test} sample(s): CIs are wide or degenerate and "
                      "differences between runs mean nothing at this size.")
    gallery = pick_gallery(ann, pred_dfs, splits, cfg["gallery_samples"], cfg["seed"])
    page = render(
        "report.html.j2", title=cfg["title"], banner=banner_items(meta_sources, metric_data, is_demo),
        size_note=size_note, quality=quality_view(quality),
        dataset=dataset_view(json.loads(Path(statistics).read_text()) if statistics and Path(statistics).is_file()
                             else None),
        tables=tables_view(tables) if metric_data else [],
        notes=settings_notes(metric_data) if metric_data else [], unrun=dict(unrun_baselines),
        gallery=gallery_view(gallery, ann, _read(clips), _read(transcripts), _read(face_summary),
                             pred_dfs, cfg),
    )
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("report → %s (%d KiB)", out, len(page) // 1024)
