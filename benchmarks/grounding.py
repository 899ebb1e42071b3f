"""Benchmark: does FAME-Net learn to read its video and audio? (config/grounding.yaml)

Runs the workflow on the planted-cue corpus (src/ecem/corpus/grounding.py: every cause names the
object of the dialogue's background photograph and the sound under it; nothing else in the inputs
does) with the demo's real models, trains FAME-Net V+T+E+A projector-only, and prints, on the
corpus's test split:
  - cue accuracy: how often the prediction names the planted object / sound (and no other one),
    with the true inputs and with each input permuted across the test samples (the reliance
    check's first derangement, `reliance.generate`); chance is 1/number of cues, and the
    agreement a permutation leaves by itself (a partner with the same cue);
  - the modality-reliance table (results/tables/reliance.md);
  - the acceptance criteria of issue 23 (true ≥ 90%, cue modality permuted ≤ chance + 10 points,
    reliance CI of the cue modalities above 0, of the inputs that carry no cue around 0);
  - wall and CPU seconds (children included, `getrusage`).

Usage: .venv/bin/python benchmarks/grounding.py [--directory grounding] [--cores 2] [--samples N]
(not part of the test suite: about 12 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TARGET = "results/tables/reliance.csv"
EXPERIMENT = "V+T+E+A"
# A lone FAME-Net job on a CPU gets every core (ecem.resources gives CPU jobs one thread, for
# running many side by side; here there is one at a time).
LONE_JOBS = ("fame_train", "fame_generate", "fame_reliance")


def run_workflow(directory: Path, cores: int, extra: list[str]) -> tuple[float, float]:
    """Run the grounding config up to the reliance table; (wall s, CPU s with children)."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(directory), "--cores", str(cores), TARGET,
           "--configfile", str(REPO / "config" / "grounding.yaml"),
           "--set-threads", *(f"{rule}={cores}" for rule in LONE_JOBS), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.monotonic() - start, cpu


def named(prediction: str, words: list[str]) -> set[str]:
    return {w for w in words if re.search(rf"\b{re.escape(w)}\b", prediction.lower())}


def cue_table(directory: Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per cue kind: accuracy with the true inputs and with each input permuted, and chance."""
    from ecem.artifacts import read_table
    from ecem.corpus.grounding import cue_words

    truth = json.loads((directory / "resources/demo/truth.json").read_text())
    planted_of = {a["video"]: a["planted"] for a in truth["annotations"]}
    ann = read_table(directory / "results/ecem/annotations.parquet")
    planted = {r.sample_id: planted_of[r.annotation_ref] for r in ann.itertuples()}
    run = directory / "results/runs" / EXPERIMENT
    true = read_table(run / "predictions.parquet")
    rel = read_table(run / "reliance.parquet")
    rel = rel[(rel["permutation"] == 0) & rel["prediction"].notna()]
    words = cue_words()
    rows, chance = [], {}
    for kind, key in (("video", "object"), ("audio", "sound")):
        def accuracy(frame: pd.DataFrame) -> float:
            hits = [named(p, words[kind]) == {planted[s][key]} for s, p in zip(frame["sample_id"], frame["prediction"])]
            return sum(hits) / max(len(hits), 1)

        row = {"cue": f"{kind} ({key})", "n": len(true), "true inputs": accuracy(true)}
        for name, frame in rel.groupby("input"):
            row[f"{name} permuted"] = accuracy(frame)
            if name == kind:  # how often a derangement hands a sample a partner with the same cue
                same = [planted[s][key] == planted[t][key] for s, t in zip(frame["sample_id"], frame["source_sample_id"])]
                row["same-cue partners"] = sum(same) / len(same)
        chance[kind] = 1 / len(words[kind])
        row["chance"] = chance[kind]
        rows.append(row)
    return pd.DataFrame(rows), chance


def acceptance(cues: pd.DataFrame, chance: dict[str, float], reliance: pd.DataFrame) -> list[tuple[str, bool]]:
    checks = []
    for kind in ("video", "audio"):
        row = cues[cues["cue"].str.startswith(kind)].iloc[0]
        checks.append((f"{kind} cue named with true inputs ≥ 90% ({row['true inputs']:.0%})",
                       row["true inputs"] >= 0.9))
        permuted = row.get(f"{kind} permuted", float("nan"))
        checks.append((f"{kind} cue with its modality permuted ≤ chance + 10 points ({permuted:.0%} vs "
                       f"{chance[kind] + 0.1:.0%})", permuted <= chance[kind] + 0.1))
    ours = reliance[reliance["run"] == EXPERIMENT].set_index("input")
    for name in ("video", "audio"):
        checks.append((f"reliance on {name}: CI above 0 ([{ours.loc[name, 'ci_low']:.3f}, "
                       f"{ours.loc[name, 'ci_high']:.3f}])", ours.loc[name, "ci_low"] > 0))
    for name in ("face", "text"):
        checks.append((f"reliance on {name} (no cue): CI includes 0 ([{ours.loc[name, 'ci_low']:.3f}, "
                       f"{ours.loc[name, 'ci_high']:.3f}])", ours.loc[name, "ci_low"] <= 0 <= ours.loc[name, "ci_high"]))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directory", type=Path, default=REPO / "benchmarks" / "out" / "grounding")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--samples", type=int, help="corpus size (default: config/grounding.yaml's)")
    parser.add_argument("--report-only", action="store_true", help="print the tables of a finished run")
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    extra = ["--config", f"demo={{rehearsal: {{samples: {args.samples}}}}}"] if args.samples else []
    timing = None if args.report_only else run_workflow(args.directory, args.cores, extra)

    cues, chance = cue_table(args.directory)
    reliance = pd.read_csv(args.directory / TARGET)
    print("\n## Cue accuracy on the test split (share of predictions naming the planted cue, and no other)\n")
    print(cues.to_markdown(index=False, floatfmt=".2f"))
    print("\n" + (args.directory / TARGET.replace(".csv", ".md")).read_text())
    card = json.loads((args.directory / "results/runs" / EXPERIMENT / "run_card.json").read_text())
    print(f"training: {card['training']['steps']} steps of {card['config']['train']['per_device_batch_size']}, "
          f"lr {card['config']['train']['learning_rate']}, selected {card['training']['selected']} "
          f"(val loss {card['training']['best']['val_loss']:.4f}), {card['training']['seconds']:.0f} s")
    if timing:
        print(f"whole run: {timing[0]:.0f} s wall, {timing[1]:.0f} CPU-s (children included), {args.cores} cores")
    print("\n## Acceptance (issue 23)\n")
    for text, ok in acceptance(cues, chance, reliance):
        print(f"- [{'x' if ok else ' '}] {text}")


if __name__ == "__main__":
    main()
