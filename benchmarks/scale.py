"""Benchmark: the whole workflow on MELD-shaped rehearsal corpora of three sizes, stage by stage.

For each size, a fresh working directory gets config/rehearsal.yaml with `demo.rehearsal.samples`
set, and the workflow is run one stage at a time (each `snakemake` call builds that stage's
targets; what earlier stages made is reused). Every call is a child process whose resource usage
comes from `os.wait4`: wall seconds, CPU seconds (user + system of snakemake and every job it
ran, children included — Snakemake's own `benchmark:` files sample every 30 s and miss child
processes) and the peak RSS of the largest process. A no-op `snakemake` call at the end measures
the start-up every stage call pays (DAG, imports); stage CPU is reported net of it.

Then per stage: CPU seconds per sample, the growth exponent b of CPU ∝ samples^b (least squares
on logs: 1 = linear; fixed costs such as model loading pull it below 1), and a projection to the
full ECEM (5,837 samples) from a straight-line fit a + c·samples of the measured CPU and wall.

Usage: .venv/bin/python benchmarks/scale.py [--sizes 60 120 240] [--cores N] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
FULL_SAMPLES = 5837  # ECEM
FULL_UTTERANCES = 13708  # MELD


def merged_config(extra: dict[str, Any]) -> dict[str, Any]:
    """config.yaml ← config/rehearsal.yaml ← `extra`, merged as Snakemake merges config files."""
    def merge(base: dict, over: dict) -> dict:
        for key, value in over.items():
            base[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
                else value
        return base

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    merge(config, yaml.safe_load((REPO / "config" / "rehearsal.yaml").read_text()))
    return merge(config, extra)


def stages(config: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(stage, snakemake targets) in workflow order; the last stage (no target) is everything else."""
    runs = [f"results/runs/{name}" for name in config["experiments"]]
    return [
        ("corpus (generated media)", [config["demo"]["truth"]]),
        ("dataset (probe, dedup, render)", ["results/ecem/quality.json"]),
        ("transcribe (WhisperX)", ["results/quality/transcribe.json"]),
        ("clip features (ViT)", ["results/quality/clip_features.json"]),
        ("faces (MTCNN + FER)", ["results/quality/faces.json", "results/features/face_summary.parquet"]),
        ("fame train", [f"{r}/run_card.json" for r in runs]),
        ("fame generate", [f"{r}/predictions.parquet" for r in runs]),
        ("baselines + evaluate + report", []),
    ]


def run_stage(workdir: Path, configfiles: list[Path], targets: list[str], cores: int) -> dict[str, float]:
    """Run snakemake for `targets` in `workdir`; wall, CPU (children included) and peak RSS."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", str(cores),
           "--configfile", *map(str, configfiles), "--", *targets]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = (workdir / "scale-benchmark.log").open("a")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    log.close()
    if proc.returncode:
        raise RuntimeError(f"snakemake {' '.join(targets)} failed in {workdir} (see scale-benchmark.log)")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_gb": usage.ru_maxrss * 1024 / 1e9}


def measure(size: int, base: Path, cores: int) -> dict[str, Any]:
    workdir = base / f"samples-{size}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    size_file = workdir / "size.yaml"
    size_file.write_text(yaml.safe_dump({"demo": {"rehearsal": {"samples": size, "seed": 0}}}))
    files = [REPO / "config" / "rehearsal.yaml", size_file]
    config = merged_config({"demo": {"rehearsal": {"samples": size, "seed": 0}}})
    result: dict[str, Any] = {"requested": size, "stages": {}}
    for name, targets in stages(config):
        result["stages"][name] = run_stage(workdir, files, targets, cores)
        print(f"  {size:>6} {name:<32} wall {result['stages'][name]['wall']:8.1f} s  "
              f"CPU {result['stages'][name]['cpu']:8.1f} s", flush=True)
    result["noop"] = run_stage(workdir, files, [], cores)
    result["samples"] = pq.read_metadata(workdir / "results/ecem/annotations.parquet").num_rows
    result["utterances"] = pq.read_metadata(workdir / "results/ecem/utterances.parquet").num_rows
    result["train_loop"] = train_loop(workdir)
    return result


def train_loop(workdir: Path) -> dict[str, float]:
    """The training loops alone, from the run cards (all experiments summed): seconds, optimizer
    steps and val checks. With a small LLM, process start-up and model loading dominate the
    fame train stage; this is the part that grows with the data."""
    cards = [json.loads(p.read_text()) for p in sorted((workdir / "results/runs").glob("*/run_card.json"))]
    return {"seconds": sum(c["training"]["seconds"] for c in cards),
            "steps": sum(c["training"]["steps"] for c in cards),
            "val_checks": sum(len(c["training"]["evals"]) for c in cards),
            "val_samples": max((c["data"]["n_val"] for c in cards), default=0)}


def fit(samples: list[int], values: list[float]) -> tuple[float, float, float]:
    """(exponent b of value ∝ samples^b, intercept a, slope c of value = a + c·samples)."""
    x, y = np.asarray(samples, float), np.maximum(np.asarray(values, float), 1e-3)
    b = float(np.polyfit(np.log(x), np.log(y), 1)[0])
    c, a = np.polyfit(x, y, 1)
    return b, float(a), float(c)


def report(results: list[dict[str, Any]]) -> None:
    samples = [r["samples"] for r in results]
    names = list(results[0]["stages"])
    sizes = " ".join(f"{s} samples / {r['utterances']} utterances" for s, r in zip(samples, results))
    print(f"\nsizes: {sizes}; snakemake start-up per call (no-op): "
          + ", ".join(f"{r['noop']['cpu']:.1f}" for r in results) + " CPU-s (subtracted below)")
    head = (f"{'stage':<32}" + "".join(f"{'CPU-s/sample@' + str(s):>18}" for s in samples)
            + f"{'peak RSS GB':>12}{'exponent':>10}{'full CPU-h':>12}{'full wall-h':>12}")
    print(head)
    total_cpu, total_wall = 0.0, 0.0
    for name in names:
        cpu = [max(r["stages"][name]["cpu"] - r["noop"]["cpu"], 0.0) for r in results]
        wall = [max(r["stages"][name]["wall"] - r["noop"]["wall"], 0.0) for r in results]
        b, a, c = fit(samples, cpu)
        _, aw, cw = fit(samples, wall)
        # a stage whose measured cost does not grow (fixed costs, noise) projects to its largest
        # measurement, never below it
        full_cpu, full_wall = max(a + c * FULL_SAMPLES, cpu[-1]), max(aw + cw * FULL_SAMPLES, wall[-1])
        total_cpu += full_cpu
        total_wall += full_wall
        rss = max(r["stages"][name]["rss_gb"] for r in results)
        print(f"{name:<32}" + "".join(f"{v / s:>18.2f}" for v, s in zip(cpu, samples))
              + f"{rss:>12.2f}{b:>10.2f}{full_cpu / 3600:>12.2f}{full_wall / 3600:>12.2f}")
    print(f"{'total':<32}" + "".join(
        f"{sum(max(r['stages'][n]['cpu'] - r['noop']['cpu'], 0) for n in names) / s:>18.2f}"
        for r, s in zip(results, samples)) + f"{'':>22}{total_cpu / 3600:>12.2f}{total_wall / 3600:>12.2f}")
    loops = [r.get("train_loop") for r in results]
    if all(loops):
        b, _, _ = fit(samples, [t["seconds"] for t in loops])
        print("\ntraining loops alone (run cards, all experiments): "
              + "; ".join(f"{s} samples: {t['seconds']:.1f} s, {t['steps']} steps, {t['val_checks']} val checks "
                          f"(val set {t['val_samples']})" for s, t in zip(samples, loops))
              + f"; exponent {b:.2f}")
    print(f"\nprojection: straight-line fit of each stage's measured CPU and wall to {FULL_SAMPLES} ECEM samples "
          f"(~{FULL_UTTERANCES} MELD utterances) on this machine ({os.cpu_count()} cores), with this config's models")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs=3, default=[60, 120, 240])
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temporary dir)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary working directories")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw measurements here")
    ap.add_argument("--from-json", type=Path, default=None, help="print the report of earlier measurements")
    args = ap.parse_args()
    if args.from_json:
        report(json.loads(args.from_json.read_text()))
        return
    base = args.workdir or Path(tempfile.mkdtemp(prefix="ecem-scale-"))
    print(f"rehearsal runs in {base}, {args.cores} cores")
    try:
        results = [measure(size, base, args.cores) for size in sorted(args.sizes)]
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    report(results)


if __name__ == "__main__":
    main()
