"""Benchmark: peak memory of a training data pass over the video tokens, before and after.

Writes a synthetic feature file at the paper's dimensions (default 5,837 samples × 356 × 1024
float16, ECEM's size: 4.26 GB of tokens) through the project's own writers (`write_features`,
`write_token_array`), then runs, each in a fresh child process, one epoch's data pass as FAME-Net
training does it — a seeded permutation in batches of 4, each batch through `ecem.fame.data.collate`
(the float32 tensor the projector takes):
  (a) before: every sample decoded into memory first, as the pre-issue loader did (the Arrow
      table, then `to_pylist()` bytes, then a NumPy copy of each),
  (b) eager: `load_tokens` now (row group by row group, one copy per sample; still all in memory),
  (c) after: `TokenStore`, one positioned read per sample (what training and generation use).
Peak RSS is the child's own high-water mark (`os.wait4` rusage), minus that of a child that only
imports the same modules (the baseline), and is compared with the tokens' bytes. The file is
written by a child too, so that the parent (whose size at fork every child starts from) stays small. (a) holds all
tokens, so its default sizes stop well below the full set (it would need ~1.1× the bytes, plus the
Arrow decode, on a 24 GB machine); (b) runs at both the small and the full size to show it flat.

Usage: .venv/bin/python benchmarks/train_memory.py [--samples 5837] [--small 500]
           [--before 500 1500] [--tokens 356] [--dim 1024] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ecem.features import video
from ecem.tokens import write_features, write_token_array

CHILD = r"""
import sys, time
import numpy as np
import torch  # noqa: F401  (imported by training too: part of the baseline)
from ecem.fame.data import Encoded, collate
from ecem.tokens import TokenStore, load_tokens
mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


def pre_issue_loader(path, ids):
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    table = ds.dataset(path, format="parquet").to_table(columns=["sample_id", "tokens", "shape"],
                                                         filter=pc.field("sample_id").isin(ids))
    return {sid: np.frombuffer(blob, dtype="<f2").reshape(shape).copy()
            for sid, blob, shape in zip(table.column("sample_id").to_pylist(),
                                        table.column("tokens").to_pylist(), table.column("shape").to_pylist())}


ids = [f"train/dia{i // 8}_utt{i % 8}" for i in range(n)]
if mode == "baseline":
    sys.exit(0)
started = time.perf_counter()
loaders = {"before": pre_issue_loader, "eager": load_tokens, "after": TokenStore}
videos = loaders[mode](path, ids)
n_tok = next(iter(videos.values())).shape[0]
order = np.random.default_rng(0).permutation(n)
total = 0.0
for i in range(0, n, 4):
    batch = [Encoded(ids[j], [1, 2, 3], [], n_tok) for j in order[i:i + 4]]
    total += float(collate(batch, videos, 0)["video"][:, 0].sum())
print(f"{time.perf_counter() - started:.2f}")
"""


def write_synthetic(path: Path, n: int, n_tokens: int, dim: int) -> None:
    """`n` samples of seeded random tokens (16 distinct blocks, shifted per sample so no two match)."""
    rng = np.random.default_rng(0)
    blocks = rng.standard_normal((16, n_tokens, dim)).astype("<f2")

    def rows():
        for i in range(n):
            tokens = blocks[i % 16] + np.float16(i % 251) / np.float16(64)
            yield {"sample_id": f"train/dia{i // 8}_utt{i % 8}", "meld_split": "train", "dialogue_id": i // 8,
                   "utterance_id": i % 8, "tokens": tokens.astype("<f2").tobytes(), "shape": [n_tokens, dim],
                   "n_frames_clip": 200, "n_frames_sampled": 100, "padding": "none",
                   "frame_positions": list(range(0, 200, 2))}

    write_features(rows(), path, {"synthetic": True}, schema=video.SCHEMA, stage=video.STAGE)
    write_token_array(path)


def run_child(mode: str, path: Path, n: int) -> tuple[float, float]:
    """(peak RSS in bytes, seconds of the data pass) of one child process."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(path), str(n)], stdout=subprocess.PIPE,
                            text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{mode} child failed ({proc.returncode})")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return usage.ru_maxrss * scale, float(out.strip() or 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=5837)
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--before", type=int, nargs="*", default=[500, 1500])
    ap.add_argument("--tokens", type=int, default=356)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--write", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write is not None:
        write_synthetic(args.write, args.samples, args.tokens, args.dim)
        return
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="train-memory-") as tmp:
        path = Path(tmp) / "clip.parquet"
        started = time.perf_counter()
        # Written by a child: a child's peak RSS starts from its parent's size at fork, so the
        # parent must stay small for the children's figures to mean anything.
        subprocess.run([sys.executable, __file__, "--write", str(path), "--samples", str(args.samples),
                        "--tokens", str(args.tokens), "--dim", str(args.dim)], check=True)
        sample_bytes = args.tokens * args.dim * 2
        print(f"wrote {args.samples} × {args.tokens} × {args.dim} float16 tokens "
              f"({args.samples * sample_bytes / 1e9:.2f} GB, Parquet + array) in {time.perf_counter() - started:.0f} s")
        base, _ = run_child("baseline", path, 1)
        print(f"baseline (python + torch + ecem imported): {base / 1e9:.2f} GB RSS\n")
        print(f"{'loader':<12}{'samples':>8}{'tokens GB':>11}{'peak RSS GB':>13}{'above base':>12}"
              f"{'÷ tokens':>10}{'pass s':>8}")
        runs = [(mode, n) for mode in ("before", "eager") for n in args.before if n <= args.samples]
        runs += [("after", n) for n in sorted({args.small, args.samples})]
        peaks: dict[tuple[str, int], float] = {}
        for mode, n in runs:
            peak, secs = run_child(mode, path, n)
            peaks[(mode, n)] = peak - base
            tok = n * sample_bytes
            print(f"{mode:<12}{n:>8}{tok / 1e9:>11.2f}{peak / 1e9:>13.2f}{(peak - base) / 1e9:>12.2f}"
                  f"{(peak - base) / tok:>10.2f}{secs:>8.1f}")
        small, full = peaks.get(("after", args.small)), peaks.get(("after", args.samples))
        if small is not None and full is not None and args.small != args.samples:
            print(f"\nafter: peak above base at {args.samples} samples is {full / max(small, 1):.2f}× "
                  f"that at {args.small} (flat = 1.0)")


if __name__ == "__main__":
    main()
