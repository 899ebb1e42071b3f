"""The paper's result tables (Markdown + CSV, every number with its 95% CI).

- Table 2: every run (FAME-Net experiments, then baselines) × the seven metrics.
- Table 3: FAME-Net ablations, labelled by modality (V, V+E, V+T, V+T+E) from each run card.
- Table 4: text source (MELD text vs. WhisperX transcripts) for the experiments that use text.
- Paired: each run minus the reference run, paired bootstrap over their common samples.
A run's modalities come from its run card (`config.experiment`), never from another stage's
config; a run without a card (a baseline) appears only in Table 2 and the paired table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from ecem.evaluate import reliance
from ecem.evaluate.metrics import METRICS
from ecem.modalities import Modalities

TEXT_SOURCES = {
    "meld": "MELD text",
    "asr": "WhisperX text",
    "asr_if_confident": "WhisperX text (if confident)",
}


def load_metrics(paths: Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """run name → metrics.json content, in the given order."""
    out = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        out[data["run"]] = data
    return out


def load_card(path: str | Path | None) -> dict[str, Any] | None:
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def modalities_of(card: Mapping[str, Any] | None) -> Modalities | None:
    """The experiment's modalities recorded in its run card, if any."""
    if not card:
        return None
    exp = (card.get("config") or {}).get("experiment")
    if isinstance(exp, Mapping) and {"video", "text", "face"} <= set(exp):
        return Modalities.from_experiment(exp)
    return None


#: Modality letters in the tables, in label order: the paper's V, T, E, then this project's audio.
MODALITY_FLAGS = (("V", "video"), ("T", "text"), ("E", "face"), ("A", "audio"))


def modality_label(mod: Modalities) -> str:
    return "+".join(p for p, key in MODALITY_FLAGS if getattr(mod, key)) or "none"


def modality_columns(mod: Modalities) -> dict[str, str]:
    """One ✓/– column per modality (Table 3's V, T, E and A columns)."""
    return {letter: "✓" if getattr(mod, key) else "–" for letter, key in MODALITY_FLAGS}


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def cell(status: Any, value: Any, low: Any, high: Any) -> str:
    """One metric's display cell: `value [low, high]`, or why it has none."""
    if status != "ok":
        return "unavailable"
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def metric_rows(
    runs: Mapping[str, Mapping[str, Any]], labels: Mapping[str, dict[str, str]] | None = None
) -> pd.DataFrame:
    """The numeric table (one row per run: value, CI and status of every metric) that
    `results/tables/<name>.csv` holds; :func:`display_table` renders it."""
    rows = []
    for name, data in runs.items():
        r = {**dict((labels or {}).get(name, {})), "run": name, "kind": data.get("kind", ""),
             "n": data["n_samples"], "n_empty": data["n_empty_predictions"], "n_missing": data["n_missing"]}
        for key in METRICS:
            entry = data["metrics"].get(key)
            if entry is None:
                continue
            r[key] = entry.get("value")
            r[f"{key}_ci_low"] = entry.get("ci_low")
            r[f"{key}_ci_high"] = entry.get("ci_high")
            r[f"{key}_status"] = entry.get("status")
        rows.append(r)
    return pd.DataFrame(rows)


def display_table(name: str, numeric: pd.DataFrame) -> pd.DataFrame:
    """A written table (`results/tables/<name>.csv`) as people read it: `value [95% CI]` per
    metric, or the paired differences with their p-values. The one formatting of the tables,
    used for the Markdown files and the report alike."""
    if numeric.empty:
        return numeric
    if name == "reliance":
        return reliance.display(numeric)
    if name == "paired":
        disp = numeric.copy()
        disp["difference [95% CI]"] = [cell("ok", a, b, c) for a, b, c in
                                       zip(disp["difference"], disp["ci_low"], disp["ci_high"])]
        disp["p"] = [fmt(p, 3) for p in disp["p_value"]]
        return disp[["run", "reference", "metric", "n", "difference [95% CI]", "p"]]
    keep = [c for c in numeric.columns if c not in ("n_empty", "n_missing") and not any(
        c == k or c.startswith(f"{k}_") for k in METRICS)]
    disp = numeric[keep].copy()
    for key, title in METRICS.items():
        if key in numeric.columns:
            disp[title] = [cell(*v) for v in zip(numeric[f"{key}_status"], numeric[key],
                                                 numeric[f"{key}_ci_low"], numeric[f"{key}_ci_high"])]
    return disp


def to_markdown(df: pd.DataFrame, title: str, notes: Sequence[str] = ()) -> str:
    lines = [f"## {title}", ""]
    if df.empty:
        lines.append("_No runs for this table in the current configuration._")
    else:
        cols = list(df.columns)
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join("---" for _ in cols) + "|")
        for row in df.itertuples(index=False):
            lines.append("| " + " | ".join(str(v) for v in row) + " |")
    lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines).rstrip() + "\n"


#: The tables evaluate_tables writes (`results/tables/<name>.{md,csv}`), in the report's order.
TABLE_NAMES = ("table2", "table3", "table4", "paired", "reliance")
TABLE_TITLES = {
    "table2": "Table 2: all runs (value [95% CI])",
    "table3": "Table 3: ablations by modality (V video, T text, E facial emotion, A audio)",
    "table4": "Table 4: text source (MELD text vs. WhisperX transcripts)",
    "paired": "Paired bootstrap: run − reference on common samples",
    "reliance": "Modality reliance: answer loss with each input permuted across samples",
}


def build_tables(
    runs: Mapping[str, Mapping[str, Any]],
    cards: Mapping[str, Mapping[str, Any] | None],
    paired: pd.DataFrame | None = None,
    reliance_rows: pd.DataFrame | None = None,
) -> dict[str, tuple[pd.DataFrame, str]]:
    """name → (numeric frame for CSV, Markdown) for table2/table3/table4/paired/reliance."""
    notes = settings_notes(runs)
    numeric = {"table2": metric_rows(runs)}

    mods = {name: m for name in runs if (m := modalities_of(cards.get(name))) is not None}
    ablation = {k: v for k, v in runs.items() if k in mods}
    labels = {
        k: {
            "modalities": modality_label(mods[k]),
            "text source": TEXT_SOURCES.get(mods[k].text_source, mods[k].text_source),
        }
        for k in ablation
    }
    # the paper's rows in its order, then the audio ablations after the rows they extend
    order = {"V": 0, "V+E": 1, "V+T": 2, "V+T+E": 3}

    def rank(kv: tuple[str, Any]) -> tuple[int, int, str]:
        mod = mods[kv[0]]
        return (mod.audio, order.get(modality_label(replace(mod, audio=False)), 9), kv[0])

    ablation = dict(sorted(ablation.items(), key=rank))
    numeric["table3"] = metric_rows(ablation, {k: {**modality_columns(mods[k]), **labels[k]} for k in ablation})
    text_runs = {k: v for k, v in ablation.items() if mods[k].text}
    text_runs = dict(
        sorted(
            text_runs.items(),
            key=lambda kv: (labels[kv[0]]["modalities"], mods[kv[0]].text_source != "meld", kv[0]),
        )
    )
    numeric["table4"] = metric_rows(text_runs, labels)
    out = {name: (table, to_markdown(display_table(name, table), TABLE_TITLES[name], notes))
           for name, table in numeric.items()}
    if paired is not None:
        out["paired"] = (paired, to_markdown(
            display_table("paired", paired), TABLE_TITLES["paired"],
            ["Two-sided p: twice the smaller share of resampled differences on either side of 0."]))
    if reliance_rows is not None:
        out["reliance"] = (reliance_rows, to_markdown(display_table("reliance", reliance_rows),
                                                      TABLE_TITLES["reliance"], reliance.NOTES))
    return out


def settings_notes(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    notes: dict[str, str] = {}
    for data in runs.values():
        for key, entry in data["metrics"].items():
            notes.setdefault(
                key,
                f"{METRICS.get(key, key)}: {entry['settings']}"
                + (f" — {entry['reason']}" if entry.get("reason") else ""),
            )
        notes.setdefault(
            "_split",
            f"Evaluated splits: {', '.join(data.get('splits', []))}; n = samples scored, "
            "n_empty = empty predictions (scored, not dropped).",
        )
    return list(notes.values())


def write_tables(
    tables: Mapping[str, tuple[pd.DataFrame, str]], out_dir: str | Path
) -> list[Path]:
    """Each table of `build_tables` ({name: (numeric rows, markdown)}) as `<name>.md` and
    `<name>.csv` (spreadsheet-safe: :mod:`ecem.csvsafe`)."""
    from ecem.artifacts import atomic_path
    from ecem.csvsafe import write_csv

    out_dir = Path(out_dir)
    written = []
    for name, (numeric, md) in tables.items():
        with atomic_path(out_dir / f"{name}.md") as tmp:
            tmp.write_text(md)
        write_csv(numeric, out_dir / f"{name}.csv")
        written += [out_dir / f"{name}.md", out_dir / f"{name}.csv"]
    return written
