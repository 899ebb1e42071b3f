"""Training's launcher: one process, or `accelerate launch` on `train.num_gpus` GPUs.

`python -m ecem.fame.launch train ARGS.json` runs `ecem.fame.stage.run_train(**ARGS)` in each
process that `accelerate launch --num_processes N --multi_gpu` starts (PyTorch DDP).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from ecem.fame.stage import run_train
from ecem.logs import FORMAT as LOG_FORMAT

log = logging.getLogger(__name__)


def launch_train(num_gpus: int, **kwargs: Any) -> None:
    """Run `run_train` in this process, or under `accelerate launch` on `num_gpus` GPUs.

    The rule requests `train.num_gpus` GPUs from the scheduler (ecem.resources.gpus); a job that
    sees fewer (a scheduler or CUDA_VISIBLE_DEVICES limit) stops at once instead of crowding
    processes onto one device. The launched processes' output goes to this job's log.
    """
    if num_gpus <= 1:
        run_train(**kwargs)
        return
    visible = torch.cuda.device_count()
    if visible < num_gpus:
        raise RuntimeError(
            f"train.num_gpus={num_gpus} but this job sees {visible} GPU(s) (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}): give the job {num_gpus} GPUs "
            f"(the rule requests resources gpu={num_gpus}) or lower train.num_gpus")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(kwargs, fh)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_gpus),
           "--multi_gpu", "-m", "ecem.fame.launch", "train", fh.name]
    log.info("launching: %s", " ".join(cmd))
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.info("[launch] %s", line.rstrip())
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
    finally:
        os.unlink(fh.name)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "train":
        raise SystemExit("usage: python -m ecem.fame.launch train ARGS.json")
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    run_train(**json.loads(Path(argv[1]).read_text()))


if __name__ == "__main__":
    main()
