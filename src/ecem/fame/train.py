"""Training loop (Hugging Face accelerate): AdamW, warmup + cosine, checkpoints, exact resume.

Why our own loop rather than `Trainer`: a checkpoint here holds only the trainable weights plus
optimizer/scheduler state (megabytes for a frozen 7B LLM, where `Trainer` would write the whole
model), and resuming is exact by construction — the data order of every epoch is a pure
function of (seed, epoch), and a checkpoint is taken only at optimizer-step boundaries, so a run
killed at any point and restarted replays the same batches and ends with the same weights as an
uninterrupted run. Multi-GPU runs go through `accelerate launch` (DDP); each process takes a
strided shard of the epoch's permutation.

Checkpoints live in `<ckpt_dir>/step-NNNNNNNN/` and carry a fingerprint of everything that
defines the run (config, input hashes); a checkpoint with another fingerprint is never resumed.
Only the ECEM `train` split is trained on; `val` loss is measured at every checkpoint and picks
the weights that are kept. The caller never passes `test` examples (and `train` checks the splits).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecem.artifacts import atomic_path
from ecem.fame.data import Encoded, collate, to_device
from ecem.fame.model import FameModel

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
WEIGHTS_FILE = "trainable.safetensors"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int) -> list[int]:
    """This process' sample indices for `epoch`: a seeded permutation, padded to a multiple of the
    world size by wrapping around, strided over processes."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    pad = (-n) % world
    perm = perm + perm[:pad]
    return perm[rank::world]


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


def _make_scheduler(optimizer: torch.optim.Optimizer, name: str, warmup: int, total: int) -> Any:
    from transformers import get_scheduler

    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total)


def eval_interval(save_steps: int, steps_per_epoch: int, evals_per_epoch: int) -> int:
    """Optimizer steps between val checks: every checkpoint, but at most `evals_per_epoch` checks
    per epoch (the interval is rounded up to a whole number of checkpoints, so checks fall on
    checkpoints).

    Why: checkpoints come every `save_steps` steps, so their number grows with the training set;
    scoring val at each one made training cost train × val (validation was 84% of the loop at 10%
    of ECEM). With a fixed number of checks per epoch, each on a bounded subset
    (:func:`validation_subset`), validation costs at most what one epoch's checks cost, and the
    loop is linear in the data."""
    per_epoch = math.ceil(steps_per_epoch / max(evals_per_epoch, 1))
    return save_steps * max(1, math.ceil(per_epoch / save_steps))


def validation_subset(val_set: Sequence[Encoded], limit: int | None, seed: int) -> list[Encoded]:
    """The val examples scored at each check: all of them, or a seeded sample of `limit` (the
    same at every check and after a resume; kept in val-set order), so one check costs the same
    at any dataset size."""
    if limit is None or len(val_set) <= limit:
        return list(val_set)
    g = torch.Generator().manual_seed(seed * 7919 + 1)
    keep = sorted(torch.randperm(len(val_set), generator=g)[:limit].tolist())
    return [val_set[i] for i in keep]


@torch.no_grad()
def evaluate_loss(model: FameModel, examples: Sequence[Encoded], videos: Mapping[str, np.ndarray],
                  batch_size: int, pad_id: int, device: torch.device,
                  audios: Mapping[str, np.ndarray] | None = None) -> float | None:
    """Token-weighted mean answer loss over `examples` (None when there are none)."""
    if not examples:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        batch = to_device(collate(examples[i:i + batch_size], videos, pad_id, audios=audios), device)
        out = model(**batch)
        total += float(out.nll.sum())
        count += int(out.n_tokens.sum())
    model.train(was_training)
    return total / max(count, 1)


def train(model: FameModel, train_set: Sequence[Encoded], val_set: Sequence[Encoded],
          videos: Mapping[str, np.ndarray], cfg: Mapping[str, Any], ckpt_dir: str | Path,
          fingerprint: str, pad_id: int, splits: Mapping[str, str] | None = None,
          after_step: Callable[[int], None] | None = None,
          audios: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Train `model`'s trainable parameters in place; return the history for the run card.

    On return the model holds the selected weights: the best `val` loss among checkpoints when
    there is a `val` set, else the last step's. A checkpoint is taken every `save_steps` steps
    (what a rerun resumes from); val is scored at checkpoints, at most `evals_per_epoch` times an
    epoch (:func:`eval_interval`) and at the last step, on at most `val_max_samples` examples
    (:func:`validation_subset`); when that is fewer than the whole val set, the selected weights
    are scored once more on all of it (`best.full_val_loss`). `splits` (sample_id → split), when given, is
    checked: only `train` samples may be in `train_set`. `after_step(step)`, when given, runs after
    each optimizer step and its checkpoint (tests use it to stop at a known step).
    """
    from accelerate import Accelerator

    if splits is not None:
        bad = sorted(e.sample_id for e in train_set if splits.get(e.sample_id) != "train")
        if bad:
            raise ValueError(f"non-train samples in the training set: {bad[:5]}")
    if not train_set:
        raise ValueError("no training examples")
    accelerator = Accelerator()
    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    seed = int(cfg["seed"])
    set_seed(seed)
    bs, accum = int(cfg["per_device_batch_size"]), int(cfg["gradient_accumulation_steps"])
    micro_per_epoch = math.ceil(math.ceil(len(train_set) / world) / bs)
    steps_per_epoch = math.ceil(micro_per_epoch / accum)
    total = int(cfg["epochs"]) * steps_per_epoch
    if cfg.get("max_steps"):
        total = min(total, int(cfg["max_steps"]))
    warmup = math.ceil(float(cfg["warmup_ratio"]) * total)

    use_cuda = device.type == "cuda"
    gc_setting = cfg["gradient_checkpointing"]
    if gc_setting is True or (gc_setting == "auto" and use_cuda):
        model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(cfg["learning_rate"]),
                                  weight_decay=float(cfg["weight_decay"]),
                                  betas=(float(cfg["adam_beta1"]), float(cfg["adam_beta2"])),
                                  eps=float(cfg["adam_epsilon"]))
    scheduler = _make_scheduler(optimizer, cfg["lr_scheduler"], warmup, total)

    ckpt_dir = Path(ckpt_dir)
    step, history, evals, best = 0, [], [], {"step": None, "val_loss": None}
    resumed_from = None
    latest = _latest_checkpoint(ckpt_dir, fingerprint) if rank == 0 or world == 1 else None
    if world > 1:
        latest = _broadcast_path(accelerator, latest)
    if latest is not None:
        state = torch.load(latest / STATE_FILE, map_location="cpu", weights_only=False)
        model.load_trainable(latest / WEIGHTS_FILE)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        step, history, evals, best = state["step"], state["history"], state["evals"], state["best"]
        resumed_from = latest.name
        log.info("resuming from %s (step %d of %d)", latest, step, total)
    model.train()
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped: FameModel = accelerator.unwrap_model(model)
    save_steps = int(cfg["save_steps"])
    check_every = eval_interval(save_steps, steps_per_epoch, int(cfg.get("evals_per_epoch") or steps_per_epoch))
    val_check = validation_subset(val_set, cfg.get("val_max_samples"), seed)
    log.info("training: %d examples, %d val (%d scored every %d steps), %d process(es), %d steps "
             "(%d per epoch), checkpoint every %d, warmup %d", len(train_set), len(val_set), len(val_check),
             check_every, world, total, steps_per_epoch, save_steps, warmup)
    started = time.time()

    def checkpoint() -> None:
        nonlocal best
        scored = rank == 0 and (step % check_every == 0 or step == total)
        val_loss = evaluate_loss(unwrapped, val_check, videos, bs, pad_id, device, audios) if scored else None
        if val_loss is not None:
            evals.append({"step": step, "val_loss": val_loss})
            if best["val_loss"] is None or val_loss < best["val_loss"]:
                best = {"step": step, "val_loss": val_loss}
                if rank == 0:
                    with atomic_path(ckpt_dir / "best.safetensors") as tmp_best:
                        unwrapped.save_trainable(tmp_best)
            log.info("step %d: val loss %.4f (best %.4f at step %s)", step, val_loss, best["val_loss"],
                     best["step"])
        if rank == 0:
            _save_checkpoint(ckpt_dir, step, unwrapped, optimizer, scheduler, history, evals, best,
                             fingerprint, int(cfg["keep_checkpoints"]))
        accelerator.wait_for_everyone()

    start_epoch = step // steps_per_epoch
    for epoch in range(start_epoch, math.ceil(total / steps_per_epoch)):
        order = epoch_order(len(train_set), seed, epoch, rank, world)
        micro = [order[i:i + bs] for i in range(0, len(order), bs)]
        groups = [micro[i:i + accum] for i in range(0, len(micro), accum)]
        for group in groups[step - epoch * steps_per_epoch:]:
            if step >= total:
                break
            loss_sum = 0.0
            for idx in group:
                batch = to_device(collate([train_set[i] for i in idx], videos, pad_id, audios=audios), device)
                out = model(**batch)
                loss = out.loss / len(group)
                accelerator.backward(loss)
                loss_sum += float(loss.detach())
            if cfg.get("max_grad_norm"):
                accelerator.clip_grad_norm_(params, float(cfg["max_grad_norm"]))
            lr = scheduler.get_last_lr()[0]  # the rate this step used
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            history.append({"step": step, "epoch": epoch, "loss": loss_sum, "lr": lr})
            if step % int(cfg["log_steps"]) == 0 or step == total:
                log.info("step %d/%d epoch %d loss %.4f lr %.3g", step, total, epoch, loss_sum, lr)
            if step % save_steps == 0 or step == total:
                checkpoint()
            if after_step is not None:
                after_step(step)
        if step >= total:
            break

    selected = "last"
    if best["step"] is not None and rank == 0:
        unwrapped.load_trainable(ckpt_dir / "best.safetensors")
        selected = "best_val"
        if len(val_check) < len(val_set):
            best = {**best, "full_val_loss": evaluate_loss(unwrapped, val_set, videos, bs, pad_id, device,
                                                               audios)}
    return {"steps": step, "total_steps": total, "steps_per_epoch": steps_per_epoch, "warmup_steps": warmup,
            "world_size": world, "history": history, "evals": evals, "best": best, "selected": selected,
            "resumed_from": resumed_from, "seconds": round(time.time() - started, 3),
            "n_train": len(train_set), "n_val": len(val_set), "n_val_per_check": len(val_check),
            "eval_every_steps": check_every, "is_main_process": rank == 0}


def _broadcast_path(accelerator: Any, path: Path | None) -> Path | None:
    from accelerate.utils import broadcast_object_list

    box = [str(path) if path is not None else None]
    broadcast_object_list(box, from_process=0)
    return Path(box[0]) if box[0] is not None else None


def _save_checkpoint(ckpt_dir: Path, step: int, model: FameModel, optimizer: Any, scheduler: Any,
                     history: list, evals: list, best: dict, fingerprint: str, keep: int) -> None:
    final = ckpt_dir / f"step-{step:08d}"
    tmp = ckpt_dir / f"step-{step:08d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_trainable(tmp / WEIGHTS_FILE)
    torch.save({"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                        "numpy": np.random.get_state()},
                "history": history, "evals": evals, "best": best, "fingerprint": fingerprint},
               tmp / STATE_FILE)
    (tmp / "step.json").write_text(json.dumps({"step": step, "fingerprint": fingerprint}) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in _checkpoints(ckpt_dir)[:-max(keep, 1)]:
        shutil.rmtree(old)
