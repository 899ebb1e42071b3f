"""Human evaluation (paper Table 5): blinded rating sheets and their aggregation.

Export: N random samples × the chosen runs become items with opaque ids (`H001`, …) in a
seeded shuffled order; raters see the dialogue's target utterance, its emotion and one
explanation per item, never the run. The key (item → sample, run) is written to a separate
file that is not given to raters. Aggregation joins filled sheets (one CSV per rater) with
the key: per run and criterion the mean, standard deviation and number of ratings, plus
inter-rater agreement per criterion (Krippendorff's alpha, interval metric, and the share of
exactly equal rating pairs). Raters open the sheets in spreadsheet programs: every CSV is written
and read through :mod:`ecem.csvsafe`, so a speaker, utterance or explanation starting with ``=``
shows as text instead of running as a formula.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecem.csvsafe import read_csv, write_csv

CRITERIA = {
    "contextuality": "Does the explanation fit the conversation's context?",
    "fluency": "Is it fluent, grammatical English?",
    "relevance": "Does it explain why the speaker feels this emotion?",
}
SCALE = (1, 5)


def build_items(
    annotations: pd.DataFrame,
    predictions: Mapping[str, pd.DataFrame],
    n_samples: int,
    seed: int,
    splits: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sheet, key): the blinded items in shuffled order, and item → sample/run."""
    ann = annotations[annotations["split"].isin(list(splits))].set_index("sample_id")
    common = set(ann.index)
    for preds in predictions.values():
        common &= set(preds["sample_id"])
    rng = np.random.default_rng(seed)
    chosen = sorted(common)
    chosen = [
        chosen[i] for i in sorted(rng.choice(len(chosen), size=min(n_samples, len(chosen)), replace=False))
    ]
    rows = []
    for sid in chosen:
        a = ann.loc[sid]
        for run, preds in predictions.items():
            pred = preds.loc[preds["sample_id"] == sid, "prediction"].iloc[0]
            rows.append(
                {
                    "sample_id": sid,
                    "run": run,
                    "speaker": a["speaker"],
                    "emotion": a["emotion"],
                    "utterance": a["utterance_text"],
                    "explanation": "" if pd.isna(pred) else str(pred),
                }
            )
    items = pd.DataFrame(rows)
    if items.empty:
        items = pd.DataFrame(columns=["sample_id", "run", "speaker", "emotion", "utterance", "explanation"])
    items = items.iloc[rng.permutation(len(items))].reset_index(drop=True)
    width = max(3, len(str(len(items))))
    items.insert(0, "item_id", [f"H{i + 1:0{width}d}" for i in range(len(items))])
    key = items[["item_id", "sample_id", "run"]].copy()
    sheet = items[["item_id", "speaker", "emotion", "utterance", "explanation"]].copy()
    for c in CRITERIA:
        sheet[c] = ""
    sheet["comment"] = ""
    return sheet, key


def sheet_html(sheet: pd.DataFrame, title: str) -> str:
    """The printable rating sheet (templates/sheet.html.j2): criteria, then one row per item."""
    from ecem.evaluate.report_html import render

    return render("sheet.html.j2", title=title, scale=list(range(SCALE[0], SCALE[1] + 1)),
                  criteria=[(c.capitalize(), q) for c, q in CRITERIA.items()],
                  items=sheet.to_dict("records"))


def export_sheets(
    annotations: pd.DataFrame,
    predictions: Mapping[str, pd.DataFrame],
    cfg: Mapping[str, Any],
    splits: Sequence[str],
    out_csv: str,
    out_html: str,
    out_key: str,
) -> int:
    """Write the rating sheet (CSV and HTML) and its key; the CSVs are safe to open in a
    spreadsheet program (:mod:`ecem.csvsafe`). Returns the number of items."""
    from ecem.artifacts import atomic_path

    sheet, key = build_items(annotations, predictions, cfg["samples"], cfg["seed"], splits)
    write_csv(sheet, out_csv)
    write_csv(key, out_key)
    with atomic_path(out_html) as tmp:
        tmp.write_text(sheet_html(sheet, cfg["title"]), encoding="utf-8")
    return len(sheet)


def krippendorff_alpha_interval(ratings: pd.DataFrame) -> float:
    """Krippendorff's alpha (interval) of a units × raters matrix with NaN for missing ratings."""
    units = [row[~np.isnan(row)] for row in ratings.to_numpy(dtype=float)]
    units = [u for u in units if len(u) >= 2]
    if not units:
        return float("nan")
    values = np.concatenate(units)
    n = len(values)
    d_o = sum(((u[:, None] - u[None, :]) ** 2).sum() / (len(u) - 1) for u in units) / n
    d_e = ((values[:, None] - values[None, :]) ** 2).sum() / (n * (n - 1))
    if d_e == 0:
        return 1.0 if d_o == 0 else float("nan")
    return float(1.0 - d_o / d_e)


def exact_agreement(ratings: pd.DataFrame) -> float:
    """Share of rater pairs (within an item) giving exactly the same rating."""
    same = total = 0
    for row in ratings.to_numpy(dtype=float):
        v = row[~np.isnan(row)]
        for i in range(len(v)):
            for j in range(i + 1, len(v)):
                total += 1
                same += int(v[i] == v[j])
    return same / total if total else float("nan")


def read_filled(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Long table item_id, rater, criterion, rating from filled sheets (rater = file stem)."""
    frames = []
    for path in paths:
        df = read_csv(path, dtype={"item_id": str})
        missing = [c for c in ["item_id", *CRITERIA] if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: filled sheet lacks columns {missing}")
        long = df.melt(
            id_vars=["item_id"], value_vars=list(CRITERIA), var_name="criterion", value_name="rating"
        )
        long["rating"] = pd.to_numeric(long["rating"], errors="coerce")
        bad = long["rating"].notna() & ~long["rating"].between(*SCALE)
        if bad.any():
            raise ValueError(
                f"{path}: ratings outside {SCALE[0]}–{SCALE[1]}: "
                f"{long.loc[bad, ['item_id', 'criterion', 'rating']].to_dict('records')[:5]}"
            )
        long["rater"] = Path(path).stem
        frames.append(long)
    return pd.concat(frames, ignore_index=True)


def aggregate(filled: Sequence[str | Path], key_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-run means table, agreement table) from filled sheets and the key."""
    key = read_csv(key_path, dtype={"item_id": str})
    long = read_filled(filled).merge(key, on="item_id", how="left", validate="many_to_one")
    unknown = long["run"].isna()
    if unknown.any():
        raise ValueError(f"items not in the key: {sorted(long.loc[unknown, 'item_id'].unique())[:5]}")
    rated = long.dropna(subset=["rating"])
    rows = []
    for run, g in rated.groupby("run", sort=False):
        row: dict[str, Any] = {"run": run, "items": g["item_id"].nunique(), "raters": g["rater"].nunique()}
        for c in CRITERIA:
            v = g.loc[g["criterion"] == c, "rating"]
            row[c] = float(v.mean()) if len(v) else float("nan")
            row[f"{c}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
            row[f"{c}_n"] = int(len(v))
        rows.append(row)
    means = pd.DataFrame(rows).sort_values("run").reset_index(drop=True)
    agree = []
    for c in CRITERIA:
        mat = long[long["criterion"] == c].pivot_table(
            index="item_id", columns="rater", values="rating", aggfunc="first", dropna=False
        )
        agree.append(
            {
                "criterion": c,
                "krippendorff_alpha_interval": krippendorff_alpha_interval(mat),
                "exact_agreement": exact_agreement(mat),
                "raters": int(mat.shape[1]),
                "items": int(mat.shape[0]),
            }
        )
    return means, pd.DataFrame(agree)


def write_table5(
    means: pd.DataFrame, agree: pd.DataFrame, out_md: str, out_csv: str, out_agree_csv: str
) -> None:
    from ecem.artifacts import atomic_path
    from ecem.evaluate.tables import fmt

    lines = [
        "## Table 5: human evaluation (mean ± sd, 1–5)",
        "",
        "| run | items | raters | " + " | ".join(c.capitalize() for c in CRITERIA) + " |",
        "|---|---|---|" + "---|" * len(CRITERIA),
    ]
    for r in means.to_dict("records"):
        cells = [f"{fmt(r[c], 2)} ± {fmt(r[f'{c}_sd'], 2)}" for c in CRITERIA]
        lines.append(f"| {r['run']} | {r['items']} | {r['raters']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Inter-rater agreement:",
        "",
        "| criterion | Krippendorff's α (interval) | exact agreement |",
        "|---|---|---|",
    ]
    for r in agree.to_dict("records"):
        lines.append(
            f"| {r['criterion']} | {fmt(r['krippendorff_alpha_interval'], 3)} | {fmt(r['exact_agreement'], 3)} |"
        )
    with atomic_path(out_md) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    write_csv(means, out_csv)
    write_csv(agree, out_agree_csv)
