"""Training checkpoints: what one holds, when one is taken, and resuming from the latest.

A checkpoint lives in `<ckpt_dir>/step-NNNNNNNN/`: the trainable weights (`trainable.safetensors`)
and `state.pt` with the optimizer, scheduler and RNG states, the logged losses, the val checks
and the best of them, and a fingerprint of everything that defines the run (config, input
hashes, code); a checkpoint with another fingerprint is never resumed, and is removed. It is
written under a `.tmp` name and renamed when complete, so a job killed while writing leaves no
half checkpoint; only the newest `keep_checkpoints` are kept. The best val check's weights are
kept apart (`best.safetensors`), since an older checkpoint holding them may be gone.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecem.artifacts import atomic_path
from ecem.fame.model import FameModel

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
WEIGHTS_FILE = "trainable.safetensors"
BEST_FILE = "best.safetensors"


@dataclass
class TrainState:
    """What a checkpoint holds besides weights and optimizer: the steps done, the logged losses,
    the val checks and the best of them (and, in this process, which checkpoint it resumed)."""

    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"step": None, "val_loss": None})
    resumed_from: str | None = None


def _checkpoints(ckpt_dir: Path) -> list[Path]:
    return sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir() and (p / STATE_FILE).exists()
                  and not p.name.endswith(".tmp"))


def _latest_checkpoint(ckpt_dir: Path, fingerprint: str) -> Path | None:
    if not ckpt_dir.exists():
        return None
    found = _checkpoints(ckpt_dir)
    if found:
        state = torch.load(found[-1] / STATE_FILE, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint:
            return found[-1]
        log.warning("checkpoints in %s belong to another configuration or inputs; starting afresh", ckpt_dir)
    shutil.rmtree(ckpt_dir)  # stale or incomplete: never mix runs
    return None


def _broadcast_path(accelerator: Any, path: Path | None) -> Path | None:
    from accelerate.utils import broadcast_object_list

    box = [str(path) if path is not None else None]
    broadcast_object_list(box, from_process=0)
    return Path(box[0]) if box[0] is not None else None


def resume(accelerator: Any, ckpt_dir: Path, fingerprint: str, model: FameModel, optimizer: Any,
           scheduler: Any, total: int) -> TrainState:
    """The state of the latest checkpoint of this run (its weights, optimizer, scheduler and RNG
    states restored in place), or a fresh state when there is none. The main process looks;
    the others get its answer."""
    rank, world = accelerator.process_index, accelerator.num_processes
    latest = _latest_checkpoint(ckpt_dir, fingerprint) if rank == 0 or world == 1 else None
    if world > 1:
        latest = _broadcast_path(accelerator, latest)
    if latest is None:
        return TrainState()
    state = torch.load(latest / STATE_FILE, map_location="cpu", weights_only=False)
    model.load_trainable(latest / WEIGHTS_FILE)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    np.random.set_state(state["rng"]["numpy"])
    log.info("resuming from %s (step %d of %d)", latest, state["step"], total)
    return TrainState(state["step"], state["history"], state["evals"], state["best"], latest.name)


def save_checkpoint(ckpt_dir: Path, state: TrainState, model: FameModel, optimizer: Any, scheduler: Any,
                    fingerprint: str, keep: int) -> None:
    """Write `step-NNNNNNNN/` for `state.step` (see the module docstring) and drop all but the
    newest `keep` checkpoints."""
    final = ckpt_dir / f"step-{state.step:08d}"
    tmp = ckpt_dir / f"step-{state.step:08d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_trainable(tmp / WEIGHTS_FILE)
    torch.save({"step": state.step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                        "numpy": np.random.get_state()},
                "history": state.history, "evals": state.evals, "best": state.best, "fingerprint": fingerprint},
               tmp / STATE_FILE)
    (tmp / "step.json").write_text(json.dumps({"step": state.step, "fingerprint": fingerprint}) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in _checkpoints(ckpt_dir)[:-max(keep, 1)]:
        shutil.rmtree(old)


@dataclass
class Checkpointer:
    """Takes a run's checkpoints: on the main process the val loss at check steps (every
    `check_every` steps and the last) and the best weights so far, then the state a rerun resumes
    from; every process waits for it."""

    ckpt_dir: Path
    fingerprint: str
    keep: int
    check_every: int
    total: int
    val_loss: Callable[[], float | None]  # of the model's current weights on the val subset
    model: FameModel
    optimizer: Any
    scheduler: Any
    accelerator: Any

    def __call__(self, state: TrainState) -> None:
        main = self.accelerator.process_index == 0
        scored = main and (state.step % self.check_every == 0 or state.step == self.total)
        val_loss = self.val_loss() if scored else None
        if val_loss is not None:
            state.evals.append({"step": state.step, "val_loss": val_loss})
            if state.best["val_loss"] is None or val_loss < state.best["val_loss"]:
                state.best = {"step": state.step, "val_loss": val_loss}
                with atomic_path(self.ckpt_dir / BEST_FILE) as tmp_best:
                    self.model.save_trainable(tmp_best)
            log.info("step %d: val loss %.4f (best %.4f at step %s)", state.step, val_loss, state.best["val_loss"],
                     state.best["step"])
        if main:
            save_checkpoint(self.ckpt_dir, state, self.model, self.optimizer, self.scheduler, self.fingerprint,
                            self.keep)
        self.accelerator.wait_for_everyone()

    def select(self, state: TrainState, rescore: Callable[[], float | None] | None = None) -> str:
        """Load the weights kept: the best val check's (`best_val`; `rescore`, when given, scores
        them once more into `state.best['full_val_loss']`), else the last step's, as they are
        (`last`; also on every process but the main one)."""
        if state.best["step"] is None or self.accelerator.process_index != 0:
            return "last"
        self.model.load_trainable(self.ckpt_dir / BEST_FILE)
        if rescore is not None:
            state.best = {**state.best, "full_val_loss": rescore()}
        return "best_val"
