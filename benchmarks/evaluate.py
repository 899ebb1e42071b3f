"""Benchmark: seconds to score N candidate/reference pairs (default 1,000) with every offline metric.

Generates N seeded synthetic cause sentences and paraphrase-like candidates, then times in one run:
  (a) all metrics together, the way the evaluate rule runs them (one PTB tokenisation, one METEOR
      process, models loaded once), split into start-up, scoring and bootstrap CIs;
  (b) each metric alone (its own start-up, tokenisation and bootstrap), with its share of the sum;
  (c) the baseline: the mean of per-sample scores over N pairs by numpy (ROUGE-L's cheap part),
      so the ratios say how far each metric is from free.
Bootstrap resamples come from config.yaml (evaluate.bootstrap); BLEURT is unavailable offline.

Usage: .venv/bin/python benchmarks/evaluate.py [--pairs 1000] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ecem.evaluate.bootstrap import BootstrapSettings, bootstrap_ci, mean_statistic
from ecem.evaluate.metrics import METRICS, Scorer, evaluate_run

REPO = Path(__file__).resolve().parents[1]
NAMES = ["Ross", "Rachel", "Monica", "Chandler", "Joey", "Phoebe"]
ADJ = ["happy", "angry", "sad", "surprised", "scared", "disgusted"]
WHY = [
    "the dinner is ready",
    "the lasagna has meat",
    "someone knocks on the door",
    "she forgot the party",
    "he got the lead in the play",
    "the fridge smells of fish",
    "the duck is loose",
    "the rent went up",
]
LINK = ["because", "since", "as", "after hearing that"]


def make_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    refs, cands = [], []
    for _ in range(n):
        a, b = rng.choice(NAMES, 2, replace=False)
        ref = f"{a} is {rng.choice(ADJ)} because {b} says {rng.choice(WHY)}."
        cand = f"{a} feels {rng.choice(ADJ)} {rng.choice(LINK)} {rng.choice(WHY)}."
        refs.append(ref)
        cands.append(cand if rng.random() > 0.01 else "")
    return cands, refs


def timed_run(cfg: dict, cands: list[str], refs: list[str]) -> dict[str, float]:
    t0 = time.perf_counter()
    scorer = Scorer(cfg)
    # start-up: METEOR's Java process and the embedding models, on two pairs
    scorer.score(["w0", "w1"], cands[:2], refs[:2])
    t1 = time.perf_counter()
    run = scorer.score([str(i) for i in range(len(cands))], cands, refs)
    t2 = time.perf_counter()
    evaluate_run(
        scorer, run, BootstrapSettings.from_config(cfg["bootstrap"]), cfg["bootstrap"]["meteor_resamples"]
    )
    t3 = time.perf_counter()
    scorer.close()
    return {"startup": t1 - t0, "score": t2 - t1, "bootstrap": t3 - t2, "total": t3 - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--resamples", type=int, default=None, help="default: config.yaml evaluate.bootstrap")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    cfg = copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text())["evaluate"])
    if args.resamples:
        cfg["bootstrap"]["resamples"] = args.resamples
    cands, refs = make_pairs(args.pairs)

    t0 = time.perf_counter()
    x = np.random.default_rng(0).uniform(size=args.pairs)
    float(x.mean())
    bootstrap_ci(args.pairs, mean_statistic(x), BootstrapSettings.from_config(cfg["bootstrap"]))
    base = time.perf_counter() - t0

    together = timed_run(cfg, cands, refs)
    alone = {}
    for key in cfg["metrics"]:
        if key == "bleurt":
            continue
        alone[key] = timed_run({**cfg, "metrics": [key]}, cands, refs)
    total_alone = sum(r["total"] for r in alone.values())

    b = cfg["bootstrap"]
    print(
        f"\nScoring {args.pairs} pairs on CPU ({args.threads} torch threads); bootstrap {b['resamples']} resamples "
        f"(METEOR {b['meteor_resamples']}); BLEURT: unavailable offline (not timed)\n"
    )
    head = f"{'what':<28}{'start-up s':>11}{'score s':>9}{'bootstrap s':>12}{'total s':>9}{'share':>7}{'x baseline':>12}"
    print(head)
    print("-" * len(head))
    print(f"{'baseline: mean + its CI':<28}{'':>11}{'':>9}{'':>12}{base:>9.3f}{'':>7}{1.0:>12.1f}")
    for key, r in alone.items():
        print(
            f"{METRICS[key] + ' alone':<28}{r['startup']:>11.2f}{r['score']:>9.2f}{r['bootstrap']:>12.2f}"
            f"{r['total']:>9.2f}{r['total'] / total_alone:>7.0%}{r['total'] / base:>12.0f}"
        )
    r = together
    print(
        f"{'all metrics together':<28}{r['startup']:>11.2f}{r['score']:>9.2f}{r['bootstrap']:>12.2f}"
        f"{r['total']:>9.2f}{'':>7}{r['total'] / base:>12.0f}"
    )
    print(
        f"\n(the sum of the metrics alone is {total_alone:.1f} s: each pays its own tokenisation and start-up)"
    )


if __name__ == "__main__":
    main()
