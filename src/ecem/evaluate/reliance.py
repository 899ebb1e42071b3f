"""The modality-reliance table: per FAME-Net run and input, the answer loss with the samples' own
inputs vs. with that input permuted, their difference Δ with a paired bootstrap CI over samples,
and one plain sentence saying what it shows.

Reads `runs/{run}/reliance.parquet` (`ecem.fame.reliance`: per sample the mean answer-token
negative log-likelihood, with its own inputs and under each derangement of each input). A
sample's permuted loss is its mean over the derangements; Δ = mean over samples of (permuted −
own), so Δ > 0 means the run does worse without its own input: it uses it. Inputs a run does
not use get a row that says so and no Δ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ecem.evaluate.bootstrap import BootstrapSettings, mean_statistic, paired_bootstrap

#: Every input, in table order: its letter (as in Table 3) and how the sentence names it.
INPUT_NAMES: dict[str, tuple[str, str]] = {
    "video": ("V", "video"), "audio": ("A", "audio"), "face": ("E", "facial emotion"),
    "text": ("T", "utterance text"), "context": ("C", "context turns"),
}
TRUE = -1  # `permutation` of the rows scored with the samples' own inputs
COLUMNS = ["run", "input", "letter", "status", "n", "permutations", "share_changed", "loss_true",
           "loss_permuted", "delta", "ci_low", "ci_high", "p_value", "reading"]


def reading(run: str, name: str, delta: float, low: float, high: float, share_changed: float = 1.0) -> str:
    """One sentence on what the interval shows (the CI excluding 0 is the evidence)."""
    what = INPUT_NAMES[name][1]
    interval = f"Δ {delta:.3f} [{low:.3f}, {high:.3f}]"
    if share_changed == 0:
        return f"every evaluated sample has the same {what}: permuting it changes nothing, so this cannot tell"
    if low > 0:
        return f"{run} uses its {what}: {interval}"
    if high < 0:
        return f"{run} does better with another sample's {what}: {interval}"
    return f"no evidence that {run} uses the {what}: {interval}"


def input_rows(run: str, table: pd.DataFrame, used: Sequence[str], boot: BootstrapSettings) -> list[dict[str, Any]]:
    """The table's rows for one run (one per input of `INPUT_NAMES`)."""
    own = table[table["permutation"] == TRUE].set_index("sample_id")["nll"]
    rows = []
    for name, (letter, _) in INPUT_NAMES.items():
        row: dict[str, Any] = {"run": run, "input": name, "letter": letter}
        permuted = table[(table["input"] == name) & (table["permutation"] != TRUE)]
        if name not in used:
            rows.append({**row, "status": "not used", "reading": f"{run} has no {INPUT_NAMES[name][1]} input"})
            continue
        if permuted.empty:
            rows.append({**row, "status": "not checked",
                         "reading": f"fewer than two samples have the {INPUT_NAMES[name][1]}: nothing to permute"})
            continue
        per_sample = permuted.groupby("sample_id")["nll"].mean()
        ids = sorted(per_sample.index)
        a, b = per_sample.loc[ids].to_numpy(float), own.loc[ids].to_numpy(float)
        res = paired_bootstrap(len(ids), mean_statistic(a), mean_statistic(b), boot)
        rows.append({**row, "status": "ok", "n": len(ids), "permutations": int(permuted["permutation"].nunique()),
                     "share_changed": float(permuted["changed"].mean()), "loss_true": float(b.mean()),
                     "loss_permuted": float(a.mean()), "delta": res.difference, "ci_low": res.ci_low,
                     "ci_high": res.ci_high, "p_value": res.p_value,
                     "reading": reading(run, name, res.difference, res.ci_low, res.ci_high,
                                        float(permuted["changed"].mean()))})
    return rows


def reliance_frame(tables: Mapping[str, pd.DataFrame], used: Mapping[str, Sequence[str]],
                   boot: BootstrapSettings) -> pd.DataFrame:
    """The numeric table (`results/tables/reliance.csv`): every run × every input."""
    rows = [r for run, table in tables.items() for r in input_rows(run, table, used[run], boot)]
    return pd.DataFrame(rows, columns=COLUMNS)


def display(numeric: pd.DataFrame) -> pd.DataFrame:
    """The table as people read it (Markdown and the report)."""
    if numeric.empty:
        return numeric

    def num(v: Any, digits: int = 3) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"

    out = pd.DataFrame({
        "run": numeric["run"], "input": [f"{r.letter} ({INPUT_NAMES[r.input][1]})" for r in numeric.itertuples()],
        "n": [num(v, 0) for v in numeric["n"]],
        "changed": ["–" if pd.isna(v) else f"{v:.0%}" for v in numeric["share_changed"]],
        "loss true": [num(v) for v in numeric["loss_true"]],
        "loss permuted": [num(v) for v in numeric["loss_permuted"]],
        "Δ [95% CI]": ["not used" if s == "not used" else "not checked" if s != "ok" else
                       f"{num(d)} [{num(lo)}, {num(hi)}]"
                       for s, d, lo, hi in zip(numeric["status"], numeric["delta"], numeric["ci_low"],
                                               numeric["ci_high"])],
        "p": [num(v) for v in numeric["p_value"]],
        "reading": numeric["reading"],
    })
    return out


NOTES = [
    "Each input a run uses is permuted across the evaluated samples (seeded derangements: no sample keeps "
    "its own) and the teacher-forced answer loss (mean negative log-likelihood per reference token) is "
    "scored again; loss permuted is the mean over derangements (Gat, Schwartz & Schwing, NeurIPS 2021).",
    "Δ = loss permuted − loss true; Δ > 0 with a CI above 0 means the run uses that input. CI: paired "
    "percentile bootstrap over samples. changed: share of samples whose partner's input differs from "
    "their own (a facial emotion shared by many samples often does not).",
]
