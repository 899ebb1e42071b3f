"""Benchmark: scoring several runs of N candidate/reference pairs (default 3 runs × 1,000 pairs).

Generates seeded synthetic cause sentences and paraphrase-like candidates (one set per run), then
times in one process, with every offline metric and config.yaml's bootstrap settings:
  (a) before: each run scored alone with its own Scorer (Java and the encoders started per run,
      as one evaluate_metrics job per run did) and METEOR's CI by sending every resample's
      statistics to the jar (EVAL), at the 200 resamples that used to be METEOR's cap;
  (b) after: one Scorer for all runs (`Scorer.score_runs`: one tokenizer process, one METEOR pass,
      one encoder stream) and METEOR's CI from summed statistics in NumPy, at the full resamples.
  (c) after, with the lexical metrics only (BLEU4, METEOR, ROUGE-L, CIDEr; no encoders).
Equality checks: every point estimate of (a) and (b) (exact for the lexical metrics, float32
batching noise for the embedding ones), and METEOR's CI by both methods at the same 200 resamples
and seed. BLEURT is unavailable offline (not timed).

Usage: .venv/bin/python benchmarks/evaluate.py [--pairs 1000] [--runs 3]
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

from ecem.evaluate.bootstrap import BootstrapSettings, bootstrap_ci
from ecem.evaluate.metrics import Scorer, evaluate_run

REPO = Path(__file__).resolve().parents[1]
LEXICAL = ("bleu4", "meteor", "rouge_l", "cider")
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


def legacy_meteor_ci(scorer: Scorer, run, boot: BootstrapSettings) -> tuple[float, float]:
    """METEOR's CI as before: each resample's statistics lines sent to the jar's EVAL command."""
    lines = np.asarray(run.per_sample["meteor_stats"].tolist(), dtype=object)
    return bootstrap_ci(len(lines), lambda idx: np.array([scorer.metric("meteor").jar.evaluate(list(lines[r]))[0] for r in idx]),
                        boot)


def before(cfg: dict, runs: dict[str, tuple[list[str], list[str], list[str]]]) -> tuple[dict, dict]:
    """Each run alone: its own Scorer (start-up included) and the jar-resampled METEOR CI."""
    boot = BootstrapSettings.from_config(cfg["bootstrap"])
    meteor_boot = BootstrapSettings(min(200, boot.resamples), boot.seed, boot.confidence)
    times = {"startup": 0.0, "score": 0.0, "bootstrap": 0.0}
    results = {}
    for name, (ids, cands, refs) in runs.items():
        t0 = time.perf_counter()
        with Scorer(cfg) as scorer:
            scorer.score(["w0", "w1"], cands[:2], refs[:2])  # start Java and load the encoders
            t1 = time.perf_counter()
            run = scorer.score(ids, cands, refs)
            t2 = time.perf_counter()
            res = evaluate_run(scorer, run, boot)
            res["meteor"].ci_low, res["meteor"].ci_high = legacy_meteor_ci(scorer, run, meteor_boot)
            t3 = time.perf_counter()
        times["startup"] += t1 - t0
        times["score"] += t2 - t1
        times["bootstrap"] += t3 - t2
        results[name] = res
    return times, results


def after(cfg: dict, runs: dict[str, tuple[list[str], list[str], list[str]]]) -> tuple[dict, dict, dict]:
    """All runs in one Scorer; METEOR's CI in NumPy (also at 200 resamples, for the equality check)."""
    boot = BootstrapSettings.from_config(cfg["bootstrap"])
    meteor_boot = BootstrapSettings(min(200, boot.resamples), boot.seed, boot.confidence)
    t0 = time.perf_counter()
    with Scorer(cfg) as scorer:
        scorer.score(["w0", "w1"], *(v[:2] for v in next(iter(runs.values()))[1:]))
        t1 = time.perf_counter()
        scored = scorer.score_runs(runs)
        t2 = time.perf_counter()
        results = {name: evaluate_run(scorer, run, boot) for name, run in scored.items()}
        t3 = time.perf_counter()
        meteor_200 = {name: bootstrap_ci(len(run.sample_ids), scorer.statistic(run, "meteor"), meteor_boot)
                      for name, run in scored.items()}
    return {"startup": t1 - t0, "score": t2 - t1, "bootstrap": t3 - t2}, results, meteor_200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    cfg = copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text())["evaluate"])
    ids = [str(i) for i in range(args.pairs)]
    runs = {}
    for r in range(args.runs):
        cands, refs = make_pairs(args.pairs, seed=r)
        runs[f"run{r}"] = (ids, cands, refs)

    t_before, res_before = before(cfg, runs)
    t_after, res_after, meteor_200 = after(cfg, runs)
    t_lexical, _, _ = after({**cfg, "metrics": list(LEXICAL)}, runs)
    point = max(abs(res_before[n][m].value - res_after[n][m].value) for n in runs for m in res_after[n]
                if res_after[n][m].status == "ok" and m not in ("bertscore", "sem_sim"))
    point_emb = max(abs(res_before[n][m].value - res_after[n][m].value) for n in runs
                    for m in ("bertscore", "sem_sim"))
    ci = max(max(abs(res_before[n]["meteor"].ci_low - meteor_200[n][0]),
                 abs(res_before[n]["meteor"].ci_high - meteor_200[n][1])) for n in runs)
    ci_other = max(abs(getattr(res_before[n][m], k) - getattr(res_after[n][m], k)) for n in runs
                   for m in res_after[n] if res_after[n][m].status == "ok" and m not in ("meteor", "bertscore", "sem_sim")
                   for k in ("ci_low", "ci_high"))
    b = cfg["bootstrap"]
    per_k = 1000 / args.pairs / args.runs
    print(f"\nScoring {args.runs} runs x {args.pairs} pairs on CPU ({args.threads} torch threads); bootstrap "
          f"{b['resamples']} resamples; BLEURT unavailable offline (not timed)\n")
    head = f"{'':<44}{'start-up s':>11}{'score s':>9}{'CIs s':>8}{'total s':>9}{'s / 1k pairs / run':>20}"
    print(head)
    print("-" * len(head))
    for label, t in (("before: a Scorer per run, METEOR CI via jar", t_before),
                     ("after: one Scorer, METEOR CI in NumPy", t_after),
                     ("after, lexical metrics only (BLEU/METEOR/R/C)", t_lexical)):
        total = sum(t.values())
        print(f"{label:<44}{t['startup']:>11.1f}{t['score']:>9.1f}{t['bootstrap']:>8.1f}{total:>9.1f}"
              f"{(t['score'] + t['bootstrap']) * per_k:>20.2f}")
    print(f"{'speed-up (total)':<44}{sum(t_before.values()) / sum(t_after.values()):>37.1f}x")
    print(f"\nlargest point-estimate difference: lexical metrics {point:.1e}, embedding metrics "
          f"{point_emb:.1e} (float32 batching)")
    print(f"largest CI difference: METEOR jar vs NumPy at 200 resamples {ci:.1e}; BLEU/ROUGE-L/CIDEr {ci_other:.1e}")


if __name__ == "__main__":
    main()
