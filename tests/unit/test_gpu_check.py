"""benchmarks/gpu_check.py, the prepared GPU check, runs here at reduced dimensions (on the CPU
when there is no GPU), so the day a GPU is lent it runs as it is."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers import REPO


def test_gpu_check_runs_at_reduced_dimensions_and_prints_its_table():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--small", "--steps", "1"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "reduced dimensions" in out
    for label, unit in (("matmul (dense)", "TFLOP/s"), ("vision ViT", "frames/s"), ("train step LLM", "tokens/s"),
                        ("generation", "new tokens/s")):
        line = next(ln for ln in out.splitlines() if ln.startswith(label))
        value = float(re.search(r"([\d,.]+) " + re.escape(unit), line).group(1).replace(",", ""))
        assert value > 0, line
    assert re.search(r"MFU \d+(\.\d+)?%", out)
    assert "DDP 2 processes" in out  # measured with 2 GPUs, said to be skipped otherwise
