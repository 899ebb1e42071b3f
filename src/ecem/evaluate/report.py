"""`results/report.html`: one self-contained page (figures embedded as base64 PNG, no external
assets) with a banner naming random/stand-in models, dataset statistics (the paper's Figures 3
and 4), every stage's data-quality summary, the metric tables and a gallery of samples.

Every section tolerates missing artifacts: it says what is absent instead of failing.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecem.artifacts import atomic_path, read_metadata, read_table
from ecem.meld import EMOTIONS, UTTERANCE_KEYS

log = logging.getLogger(__name__)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em} h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:13px} td,th{border:1px solid #ccc;padding:3px 7px;
vertical-align:top;text-align:left} th{background:#f3f3f3} .banner{background:#fff3cd;border:2px solid #d39e00;
padding:.8em 1.2em;border-radius:6px} .banner.ok{background:#e7f5e7;border-color:#4a4}
.missing{color:#a33;font-style:italic} .note{color:#555;font-size:13px} .fig{display:inline-block;margin:0 1em 1em 0}
.sample{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:1em 0} .frames img{margin-right:4px;
border:1px solid #999} .pred{margin:.2em 0} .pred b{display:inline-block;min-width:9em} details{margin:.3em 0}
"""


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


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


def img_tag(uri: str, alt: str, width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    return f'<img src="{uri}" alt="{esc(alt)}"{w}>'


def missing(what: str) -> str:
    return f'<p class="missing">Not available: {esc(what)}.</p>'


def json_to_html(obj: Any, depth: int = 0, max_rows: int = 30) -> str:
    """Nested dict/list JSON as nested tables (long lists truncated, with a count)."""
    if isinstance(obj, Mapping):
        if not obj:
            return "<i>empty</i>"
        rows = "".join(
            f"<tr><th>{esc(k)}</th><td>{json_to_html(v, depth + 1, max_rows)}</td></tr>"
            for k, v in obj.items()
        )
        return f"<table>{rows}</table>"
    if isinstance(obj, list):
        if not obj:
            return "<i>none</i>"
        shown = obj[:max_rows]
        more = f"<p class='note'>… {len(obj) - max_rows} more</p>" if len(obj) > max_rows else ""
        if all(isinstance(x, Mapping) for x in shown):
            cols = list(dict.fromkeys(k for x in shown for k in x))
            head = "".join(f"<th>{esc(c)}</th>" for c in cols)
            body = "".join(
                "<tr>"
                + "".join(f"<td>{json_to_html(x.get(c), depth + 1, max_rows)}</td>" for c in cols)
                + "</tr>"
                for x in shown
            )
            return f"<table><tr>{head}</tr>{body}</table>{more}"
        return esc(", ".join(str(x) for x in shown)) + more
    if isinstance(obj, float):
        return esc(f"{obj:.4g}")
    return esc(obj)


def find_random_models(obj: Any, where: str, out: list[dict[str, str]]) -> None:
    """Collect every `{..., "random_weights": true, ...}` record found in artifact metadata."""
    if isinstance(obj, Mapping):
        if obj.get("random_weights") is True:
            name = next(
                (str(obj[k]) for k in ("name_or_path", "model_id", "model", "name", "path") if obj.get(k)),
                "unnamed model",
            )
            out.append({"where": where, "model": name})
        for k, v in obj.items():
            if k != "random_weights":
                find_random_models(v, f"{where} › {k}", out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            find_random_models(v, f"{where}[{i}]", out)


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------


def banner(
    metadata_sources: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]], is_demo: bool
) -> str:
    randoms: list[dict[str, str]] = []
    for where, meta in metadata_sources.items():
        find_random_models(meta, where, randoms)
    if any(r["model"] != "unnamed model" for r in randoms):
        randoms = [r for r in randoms if r["model"] != "unnamed model"]
    seen, items = set(), []
    for r in randoms:
        key = (r["model"], r["where"].split(" › ")[0])
        if key not in seen:
            seen.add(key)
            items.append(
                f"<li><b>random weights</b>: {esc(r['model'])} <span class='note'>({esc(r['where'])})</span></li>"
            )
    standins = {}
    for data in metrics.values():
        for key, entry in data["metrics"].items():
            s = entry.get("settings", "")
            if key in ("bertscore", "sem_sim") and "MiniLM" in s:
                standins[key] = (
                    f"{entry['name']} uses all-MiniLM-L6-v2, a stand-in for the paper's "
                    f"{'roberta-large L17' if key == 'bertscore' else 'SimCSE roberta-large'}"
                )
            if entry.get("status") == "unavailable":
                standins[key] = f"{entry['name']} unavailable: {entry.get('reason')}"
    items += [f"<li><b>stand-in / missing metric</b>: {esc(v)}</li>" for v in standins.values()]
    if is_demo:
        items.insert(
            0,
            "<li><b>demo corpus</b>: the data are the project's generated MELD-format demo "
            "(synthetic speech and scenes), not MELD/ECEM.</li>",
        )
    if not items:
        return (
            "<div class='banner ok'><b>No random-weight models or metric stand-ins were recorded</b> in the "
            "artifacts this report read.</div>"
        )
    return (
        "<div class='banner'><b>These are not paper results.</b> The following models were random or "
        f"stand-ins, so the numbers below only show that the pipeline runs:<ul>{''.join(items)}</ul></div>"
    )


def dataset_section(ann: pd.DataFrame | None) -> str:
    if ann is None:
        return missing("annotations.parquet (dataset stage)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = []
    counts = ann["emotion"].value_counts()
    order = [e for e in EMOTIONS if e in counts.index] + [e for e in counts.index if e not in EMOTIONS]
    counts = counts.reindex(order)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(counts.index, counts.values / counts.sum() * 100, color="#4c72b0")
    for i, (n, p) in enumerate(zip(counts.values, counts.values / counts.sum() * 100)):
        ax.text(i, p, f"{p:.0f}%\n(n={n})", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("% of samples")
    ax.set_title("Emotion proportions (cf. paper Fig. 3)")
    ax.set_ylim(0, max(counts.values / counts.sum() * 100) * 1.3)
    ax.tick_params(axis="x", rotation=30)
    parts.append(f"<div class='fig'>{img_tag(png_data_uri(fig), 'Figure 3: emotion proportions')}</div>")

    lengths = ann.assign(cause_words=ann["cause"].fillna("").str.split().str.len())
    groups = [lengths.loc[lengths["emotion"] == e, "cause_words"].to_numpy() for e in order]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.boxplot(groups, showmeans=True)
    ax.set_xticks(range(1, len(order) + 1), order, rotation=30)
    ax.set_ylabel("cause length (words)")
    ax.set_title("Cause length per emotion (cf. paper Fig. 4)")
    parts.append(f"<div class='fig'>{img_tag(png_data_uri(fig), 'Figure 4: cause length per emotion')}</div>")

    split = ann.groupby("split").agg(
        samples=("sample_id", "size"), dialogues=("dialogue_id", lambda s: s.astype(str).nunique())
    )
    stats = pd.DataFrame(
        {
            "samples": counts,
            "share %": (counts / counts.sum() * 100).round(1),
            "mean cause words": [float(np.mean(g)) if len(g) else math.nan for g in groups],
        }
    )
    parts.append("<h3>Samples per split</h3>" + split.to_html())
    parts.append("<h3>Per emotion</h3>" + stats.to_html(float_format=lambda v: f"{v:.1f}"))
    return "".join(parts)


def quality_section(quality: Mapping[str, str | Path]) -> str:
    out = []
    for name, path in quality.items():
        p = Path(path)
        if not p.is_file():
            out.append(f"<h3>{esc(name)}</h3>" + missing(f"{p} (stage not run)"))
            continue
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as err:
            out.append(f"<h3>{esc(name)}</h3>" + missing(f"{p} is not valid JSON ({err})"))
            continue
        out.append(
            f"<h3>{esc(name)}</h3><details open><summary class='note'>{esc(p)}</summary>"
            f"{json_to_html(data)}</details>"
        )
    return "".join(out) or missing("no data-quality summaries")


def tables_section(tables: Mapping[str, tuple[pd.DataFrame, pd.DataFrame, str]], notes: Sequence[str]) -> str:
    titles = {
        "table2": "Table 2: all runs",
        "table3": "Table 3: ablations by modality",
        "table4": "Table 4: text source",
        "paired": "Paired bootstrap against the reference run",
    }
    out = []
    for key, (disp, _, _) in tables.items():
        out.append(f"<h3>{esc(titles.get(key, key))}</h3>")
        out.append(
            disp.to_html(index=False, classes=f"metrics {key}", border=1)
            if not disp.empty
            else "<p class='note'>No runs for this table in the current configuration.</p>"
        )
    out.append("<ul class='note'>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    return "".join(out)


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


def gallery_section(
    samples: Sequence[str],
    ann: pd.DataFrame | None,
    clips: pd.DataFrame | None,
    transcripts: pd.DataFrame | None,
    faces: pd.DataFrame | None,
    predictions: Mapping[str, pd.DataFrame],
    cfg: Mapping[str, Any],
) -> str:
    if ann is None:
        return missing("annotations.parquet, so no gallery")
    if not samples:
        return missing("samples to show (no predictions in the evaluated splits)")
    notes = []
    if clips is None:
        notes.append("clips.parquet absent: no keyframes")
    if transcripts is None:
        notes.append("transcripts.parquet absent: no ASR transcripts")
    if faces is None:
        notes.append("no per-sample face summary: no facial emotions")
    out = [f"<p class='note'>{esc('; '.join(notes))}</p>" if notes else ""]
    by_id = ann.set_index("sample_id")
    for sid in samples:
        if sid not in by_id.index:
            continue
        a = by_id.loc[sid]
        block = [
            f"<div class='sample'><h3>{esc(sid)} <span class='note'>({esc(a['split'])} split; target "
            f"emotion <b>{esc(a['emotion'])}</b>)</span></h3>"
        ]
        if clips is not None:
            row = clips[clips["sample_id"] == sid]
            if (
                row.empty
                or row.iloc[0]["status"] != "ok"
                or not Path(str(row.iloc[0]["clip_path"])).is_file()
            ):
                block.append(missing("prefix clip (quarantined or absent)"))
            else:
                try:
                    imgs = keyframes(
                        row.iloc[0]["clip_path"],
                        row.iloc[0]["n_frames"],
                        cfg["keyframes"],
                        cfg["thumb_width"],
                    )
                    block.append(
                        "<div class='frames'>"
                        + "".join(img_tag(u, f"keyframe of {sid}") for u in imgs)
                        + "</div>"
                    )
                except Exception as err:  # a broken clip must not break the report
                    block.append(missing(f"keyframes ({err})"))
        block.append(
            f"<p><b>{esc(a['speaker'])}</b>: “{esc(a['utterance_text'])}” <span class='note'>(MELD text)</span></p>"
        )
        if transcripts is not None:
            key = {k: a[k] for k in UTTERANCE_KEYS if k in a.index}
            t = transcripts
            for k, v in key.items():
                if k in t.columns:
                    t = t[t[k] == v]
            if not t.empty and "text_asr" in t.columns:
                r = t.iloc[0]
                block.append(
                    f"<p><b>ASR</b>: “{esc(r['text_asr'])}” <span class='note'>({esc(r.get('status', ''))})</span></p>"
                )
            else:
                block.append("<p class='note'>No transcript for the target utterance.</p>")
        if faces is not None:
            f = faces[faces["sample_id"] == sid]
            if f.empty:
                block.append("<p class='note'>No face summary for this sample.</p>")
            else:
                r = f.iloc[0]
                extra = ", ".join(f"{k}: {esc(r[k])}" for k in ("n_faces", "status") if k in f.columns)
                block.append(
                    f"<p><b>Faces</b>: emotion <b>{esc(r['face_emotion'])}</b> <span class='note'>({extra})</span></p>"
                )
        block.append(f"<p class='pred'><b>Reference</b> {esc(a['cause'])}</p>")
        for run, preds in predictions.items():
            p = preds[preds["sample_id"] == sid]
            text = (
                "<span class='missing'>no prediction</span>"
                if p.empty
                else (esc(p.iloc[0]["prediction"]) or "<span class='missing'>(empty)</span>")
            )
            block.append(f"<p class='pred'><b>{esc(run)}</b> {text}</p>")
        block.append("</div>")
        out.append("".join(block))
    return "".join(out)


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


# ---------------------------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------------------------


def _read(path: str | Path | None) -> pd.DataFrame | None:
    if path is None or not Path(path).is_file():
        return None
    return read_table(path)


def build_report(
    *,
    annotations: str | None,
    clips: str | None,
    quality: Mapping[str, str],
    metrics: Mapping[str, str],
    predictions: Mapping[str, str],
    cards: Mapping[str, str],
    transcripts: str | None,
    face_summary: str | None,
    model_files: Mapping[str, str],
    paired_csv: str | None,
    cfg: Mapping[str, Any],
    splits: Sequence[str],
    unrun_baselines: Mapping[str, str],
    is_demo: bool,
    out: str,
) -> None:
    from ecem.evaluate.tables import settings_notes, build_tables, load_card, load_metrics

    ann = _read(annotations)
    clip_df = _read(clips)
    metric_data = load_metrics([m for m in metrics.values() if Path(m).is_file()])
    pred_dfs = {r: read_table(p) for r, p in predictions.items() if Path(p).is_file()}

    transcript_df, faces = _read(transcripts), _read(face_summary)
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
            try:
                meta_sources[f"predictions {run}"] = read_metadata(path)
            except ValueError:
                pass

    paired = pd.read_csv(paired_csv) if paired_csv and Path(paired_csv).is_file() else None
    tables = build_tables(metric_data, {r: load_card(cards.get(r)) for r in metric_data}, paired)
    notes = settings_notes(metric_data) if metric_data else []
    gallery = pick_gallery(ann, pred_dfs, splits, cfg["gallery_samples"], cfg["seed"])

    n_eval = {r: d["n_samples"] for r, d in metric_data.items()}
    size_note = (
        f"Evaluated splits: {', '.join(splits)}. Samples scored per run: "
        + ", ".join(f"{r} {n}" for r, n in n_eval.items())
        + "."
    )
    if ann is not None and int((ann["split"] == "test").sum()) < 30:
        size_note += (
            f" The test split has only {int((ann['split'] == 'test').sum())} sample(s): CIs are wide or "
            "degenerate and differences between runs mean nothing at this size."
        )
    unrun = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in unrun_baselines.items())

    body = [
        f"<h1>{esc(cfg['title'])}</h1>",
        banner(meta_sources, metric_data, is_demo),
        f"<p class='note'>{esc(size_note)}</p>",
        "<h2>1. Dataset statistics</h2>",
        dataset_section(ann),
        "<h2>2. Data quality by stage</h2>",
        quality_section(quality),
        "<h2>3. Metrics</h2>",
        tables_section(tables, notes) if metric_data else missing("metrics (no runs scored)"),
        (f"<h3>Configured baselines not run here</h3><ul>{unrun}</ul>" if unrun else ""),
        "<h2>4. Gallery</h2>",
        gallery_section(gallery, ann, clip_df, transcript_df, faces, pred_dfs, cfg),
    ]
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(cfg['title'])}</title><style>{CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("report → %s (%d KiB)", out, len(page) // 1024)
