"""Benchmark: the cost of scoring, per pair and per job.

(a) Scoring speed (`Scorer.score_runs`, every offline metric) on N runs × P pairs (default the
    real ECEM test split's shape, 2 runs × 580 pairs; the pairs are seeded synthetic cause sentences
    of ECEM's length, ~17 words, since no real ECEM pairs ship offline), in one process:
    - before: the embedding metrics as the libraries run them — `bert_score.BERTScorer.score`
      over all pairs and `SentenceTransformer.encode` of every candidate and reference at
      `batch_size` 32, each loading and running MiniLM itself (what the scorer did until now);
    - after: one MiniLM pass per distinct sentence serving both (`ecem.evaluate.metrics.embedding`);
    the lexical metrics (BLEU4, METEOR, ROUGE-L, CIDEr) are the same code in both and timed once.
    Reported: seconds per 1,000 pairs per run, and the largest difference of the embedding scores.
(b) Jobs (`evaluate_metrics`, `ecem.evaluate.stage.run_scoring_stage`), each in a fresh process so
    Java and the encoders start as they do in the workflow: all nine runs of a finished demo
    (`--demo DIR`) scored in one job, and one run alone; wall and CPU seconds (children included).

Usage: .venv/bin/python benchmarks/evaluate.py [--pairs 580] [--runs 2] [--demo results-dir-of-a-demo-run]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
LEXICAL = ("bleu4", "meteor", "rouge_l", "cider")
NAMES = ["Ross", "Rachel", "Monica", "Chandler", "Joey", "Phoebe"]
ADJ = ["happy", "angry", "sad", "surprised", "scared", "disgusted"]
WHY = ["the dinner she cooked for everyone is finally ready", "the lasagna he made has meat in it again",
       "someone keeps knocking on the apartment door at night", "she completely forgot about the surprise party",
       "he got the lead part in the new play downtown", "the old fridge smells of fish and cheese",
       "the duck escaped and is loose in the apartment", "the landlord said the rent went up again"]
LINK = ["because", "since", "as", "after hearing that"]


def make_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """ECEM-like (candidate, reference) cause sentences, ~17 words each."""
    rng = np.random.default_rng(seed)
    refs, cands = [], []
    for _ in range(n):
        a, b = rng.choice(NAMES, 2, replace=False)
        refs.append(f"{a} is {rng.choice(ADJ)} because {b} just told {a} that {rng.choice(WHY)}.")
        cand = f"{a} feels {rng.choice(ADJ)} {rng.choice(LINK)} {rng.choice(WHY)}, which {b} mentioned."
        cands.append(cand if rng.random() > 0.01 else "")
    return cands, refs


def library_embeddings(cfg: dict, cands: list[str], refs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """BERTScore F1 and Sem_Sim the way the libraries compute them (each loads and runs MiniLM)."""
    from bert_score import BERTScorer
    from sentence_transformers import SentenceTransformer

    from ecem.evaluate.metrics import bundled_minilm_path

    model = str(bundled_minilm_path())
    keep = [i for i, c in enumerate(cands) if c.strip()]
    scorer = BERTScorer(model_type=model, num_layers=cfg["bertscore"]["num_layers"], lang="en", idf=False,
                        batch_size=cfg["bertscore"]["batch_size"], device="cpu")
    f1 = np.zeros(len(cands))
    _, _, f = scorer.score([cands[i] for i in keep], [refs[i] for i in keep], batch_size=cfg["bertscore"]["batch_size"])
    f1[keep] = f.numpy()
    st = SentenceTransformer(model, device="cpu")
    emb = st.encode(cands + refs, batch_size=cfg["sem_sim"]["batch_size"], convert_to_numpy=True,
                    normalize_embeddings=True)
    return f1, np.sum(emb[: len(cands)] * emb[len(cands):], axis=1)


def scoring_speed(cfg: dict, n_runs: int, n_pairs: int) -> None:
    from ecem.evaluate.metrics import Scorer

    ids = [str(i) for i in range(n_pairs)]
    runs = {f"run{r}": (ids, *make_pairs(n_pairs, seed=r)) for r in range(n_runs)}
    cands = [c for _, run_cands, _ in runs.values() for c in run_cands]
    refs = [r for _, _, run_refs in runs.values() for r in run_refs]
    with Scorer({**cfg, "metrics": list(LEXICAL)}) as scorer:
        scorer.score(["w"], ["warm up"], ["warm up java"])  # start Java before timing
        t0 = time.perf_counter()
        scorer.score_runs(runs)
        lexical = time.perf_counter() - t0
    t0 = time.perf_counter()
    f1_before, sem_before = library_embeddings(cfg, cands, refs)
    embed_before = time.perf_counter() - t0
    with Scorer({**cfg, "metrics": ["bertscore", "sem_sim"]}) as scorer:
        t0 = time.perf_counter()
        scored = scorer.score_runs(runs)
        embed_after = time.perf_counter() - t0
    f1_after = np.concatenate([s.per_sample["bertscore"].to_numpy() for s in scored.values()])
    sem_after = np.concatenate([s.per_sample["sem_sim"].to_numpy() for s in scored.values()])
    per_k = 1000 / n_pairs / n_runs
    print(f"\n(a) score_runs, {n_runs} runs x {n_pairs} pairs (synthetic, ~17 words), every offline metric, "
          f"{torch.get_num_threads()} torch threads\n")
    print(f"{'':<58}{'s':>8}{'s / 1k pairs / run':>20}")
    for label, seconds in (("lexical metrics (BLEU4, METEOR, ROUGE-L, CIDEr)", lexical),
                           ("embedding metrics before (bert_score + sentence-transformers)", embed_before),
                           ("embedding metrics after (one MiniLM pass per distinct sentence)", embed_after),
                           ("all metrics before", lexical + embed_before),
                           ("all metrics after", lexical + embed_after)):
        print(f"{label:<58}{seconds:>8.1f}{seconds * per_k:>20.1f}")
    print(f"speed-up of the embedding metrics: {embed_before / embed_after:.1f}x; largest difference: "
          f"BERTScore {np.abs(f1_after - f1_before).max():.1e}, Sem_Sim {np.abs(sem_after - sem_before).max():.1e}")


def job(runs: list[str], demo: Path, cfg: dict, out: Path) -> tuple[float, float]:
    """One evaluate_metrics job's work (`run_scoring_stage`) in a fresh process: (wall, CPU) s."""
    args = {"runs": runs, "predictions": [str(demo / "runs" / r / "predictions.parquet") for r in runs],
            "annotations": str(demo / "ecem" / "annotations.parquet"), "cfg": cfg,
            "scores": [str(out / f"{r}.scores.parquet") for r in runs],
            "metrics": [str(out / f"{r}.metrics.json") for r in runs], "cache": str(out / "cache")}
    code = ("import json, sys; from ecem.evaluate.stage import run_scoring_stage; a = json.loads(sys.argv[1]); "
            "run_scoring_stage(a['runs'], a['predictions'], a['annotations'], a['cfg'], a['scores'], a['metrics'], "
            "a['cache'], threads=2)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, json.dumps(args)], check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def jobs(cfg: dict, demo: Path) -> None:
    runs = sorted(p.parent.name for p in (demo / "runs").glob("*/predictions.parquet"))
    with tempfile.TemporaryDirectory() as tmp:
        all_wall, all_cpu = job(runs, demo, cfg, Path(tmp) / "all")
        one = [job([r], demo, cfg, Path(tmp) / r) for r in runs[:3]]
    one_wall, one_cpu = np.mean([w for w, _ in one]), np.mean([c for _, c in one])
    print(f"\n(b) evaluate_metrics jobs on the demo's {len(runs)} runs ({demo}), fresh processes\n")
    print(f"{'':<44}{'wall s':>8}{'CPU s':>8}")
    print(f"{f'all {len(runs)} runs in one job':<44}{all_wall:>8.1f}{all_cpu:>8.1f}")
    print(f"{'one run alone (mean of 3)':<44}{one_wall:>8.1f}{one_cpu:>8.1f}")
    print(f"{f'{len(runs)} runs, one job each':<44}{one_wall * len(runs):>8.1f}{one_cpu * len(runs):>8.1f}"
          f"   ({one_cpu * len(runs) / all_cpu:.1f}x the CPU of one job)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=580)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--demo", type=Path, help="results/ of a finished demo run, for (b)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    section = yaml.safe_load((REPO / "config.yaml").read_text())["evaluate"]
    cfg = {k: copy.deepcopy(section[k]) for k in ("splits", "metrics", "device", "bootstrap", "bertscore",
                                                   "sem_sim", "bleurt")}
    scoring_speed(cfg, args.runs, args.pairs)
    if args.demo:
        jobs(cfg, args.demo)


if __name__ == "__main__":
    main()
