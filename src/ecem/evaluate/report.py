"""`results/report.html`: one self-contained page (figures embedded as base64 PNG, no external
assets) with a banner naming random/stand-in models, dataset statistics (the paper's Figures 3
and 4), every stage's data-quality summary, the metric tables evaluate_tables wrote, and a
gallery of samples.

The page is the Jinja2 template `templates/report.html.j2` (autoescaped); this module only
gathers what it shows. Every section tolerates missing artifacts: it says what is absent
instead of failing.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecem.artifacts import atomic_path, read_metadata, read_table
from ecem.csvsafe import read_csv
from ecem.evaluate.metrics.embedding import BUNDLED_ENCODER
from ecem.evaluate.tables import TABLE_NAMES, TABLE_TITLES, display_table, load_card, load_metrics, settings_notes
from ecem.meld import UTTERANCE_KEYS

log = logging.getLogger(__name__)
DETAIL_ROWS = 30  # rows of a detail table shown before "… N more"


def render(template: str, **context: Any) -> str:
    """Render one of this package's HTML templates, every value HTML-escaped."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("ecem.evaluate", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template(template).render(**context)


def _show(value: Any, digits: int) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}g}" if isinstance(value, float) else value


def frame_view(df: pd.DataFrame, digits: int = 4) -> dict[str, Any]:
    """A DataFrame as the template's `table` macro takes it (floats rounded for reading)."""
    return {"columns": [str(c) for c in df.columns],
            "rows": [{str(k): _show(v, digits) for k, v in r.items()} for r in df.to_dict("records")]}


def png_data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def array_png_uri(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


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


def keyframes(clip_path: str | Path, n_frames: int, n: int, width: int) -> list[str]:
    """`n` evenly spaced frames of a clip as PNG data URIs, `width` pixels wide."""
    from ecem.media import read_frames

    idx = sorted({int(round(x)) for x in np.linspace(0, max(int(n_frames) - 1, 0), n)})
    return [array_png_uri(_resize(f, width)) for f in read_frames(clip_path, idx)]


def _resize(img: np.ndarray, width: int) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    im = Image.fromarray(img).resize((width, max(1, round(h * width / w))))
    return np.asarray(im)


def gallery_view(samples: Sequence[str], ann: pd.DataFrame | None, clips: pd.DataFrame | None,
                 transcripts: pd.DataFrame | None, faces: pd.DataFrame | None,
                 predictions: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Per gallery sample: keyframes of its prefix clip, MELD and ASR text, the face emotion,
    the reference and every run's prediction."""
    if ann is None:
        return {"missing": "annotations.parquet, so no gallery", "notes": [], "samples": []}
    if not samples:
        return {"missing": "samples to show (no predictions in the evaluated splits)", "notes": [], "samples": []}
    notes = [note for absent, note in ((clips is None, "clips.parquet absent: no keyframes"),
                                       (transcripts is None, "transcripts.parquet absent: no ASR transcripts"),
                                       (faces is None, "no per-sample face summary: no facial emotions"))
             if absent]
    by_id = ann.set_index("sample_id")
    shown = []
    for sid in samples:
        if sid not in by_id.index:
            continue
        a = by_id.loc[sid]
        item: dict[str, Any] = {
            "sample_id": sid, "split": a["split"], "emotion": a["emotion"], "speaker": a["speaker"],
            "utterance": a["utterance_text"], "reference": a["cause"], "frames": [],
            "frames_missing": None, "asr": None, "face": None,
            "predictions": [(run, None if p.empty else str(p.iloc[0]["prediction"]))
                            for run, p in ((r, df[df["sample_id"] == sid]) for r, df in predictions.items())],
        }
        if clips is not None:
            row = clips[clips["sample_id"] == sid]
            if row.empty or row.iloc[0]["status"] != "ok" or not Path(str(row.iloc[0]["clip_path"])).is_file():
                item["frames_missing"] = "prefix clip (quarantined or absent)"
            else:
                try:
                    item["frames"] = keyframes(row.iloc[0]["clip_path"], row.iloc[0]["n_frames"],
                                               cfg["keyframes"], cfg["thumb_width"])
                except Exception as err:  # a broken clip must not break the report
                    item["frames_missing"] = f"keyframes ({err})"
        if transcripts is not None:
            t = transcripts
            for k in UTTERANCE_KEYS:
                if k in t.columns and k in a.index:
                    t = t[t[k] == a[k]]
            item["asr"] = ({"text": t.iloc[0]["text_asr"], "status": t.iloc[0].get("status", "")}
                           if not t.empty and "text_asr" in t.columns else {})
        if faces is not None:
            f = faces[faces["sample_id"] == sid]
            item["face"] = {} if f.empty else {
                "emotion": f.iloc[0]["face_emotion"],
                "extra": ", ".join(f"{k}: {f.iloc[0][k]}" for k in ("n_faces", "status") if k in f.columns)}
        shown.append(item)
    return {"missing": None, "notes": notes, "samples": shown}


def pick_gallery(
    ann: pd.DataFrame | None,
    predictions: Mapping[str, pd.DataFrame],
    splits: Sequence[str],
    n: int,
    seed: int,
) -> list[str]:
    if ann is None:
        return []
    ids = set(ann.loc[ann["split"].isin(list(splits)), "sample_id"])
    with_pred = (
        sorted(ids & set().union(*[set(p["sample_id"]) for p in predictions.values()]))
        if predictions
        else sorted(ids)
    )
    # test samples first (the gallery is of test samples when there are enough of them)
    split_of = dict(zip(ann["sample_id"], ann["split"]))
    rng = np.random.default_rng(seed)
    test = [s for s in with_pred if split_of.get(s) == "test"]
    rest = [s for s in with_pred if split_of.get(s) != "test"]
    rng.shuffle(test)
    rng.shuffle(rest)
    return (test + rest)[:n]


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
