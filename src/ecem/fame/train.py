"""Training loop (Hugging Face accelerate): AdamW, warmup + cosine, checkpoints, exact resume.

Why our own loop rather than `Trainer`: a checkpoint here holds only the trainable weights plus
optimizer/scheduler state (megabytes for a frozen 7B LLM, where `Trainer` would write the whole
model), and resuming is exact by construction — the data order of every epoch is a pure
function of (seed, epoch), and a checkpoint is taken only at optimizer-step boundaries, so a run
killed at any point and restarted replays the same batches and ends with the same weights as an
uninterrupted run. Multi-GPU runs go through `accelerate launch` (DDP); each process takes a
strided shard of the epoch's permutation.

Checkpoints (`ecem.fame.checkpoints`) carry a fingerprint of everything that defines the run;
a checkpoint with another fingerprint is never resumed.
Only the ECEM `train` split is trained on; `val` loss is measured at checkpoints (at most
`evals_per_epoch` times an epoch) and picks the weights that are kept. The caller never passes
`test` examples (and `train` checks the splits).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecem.fame.checkpoints import Checkpointer, resume
from ecem.fame.data import Encoded, collate, to_device
from ecem.fame.model import FameModel

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Schedule:
    """A run's optimizer steps: `steps_per_epoch` (each of `accumulation` micro-batches of
    `batch_size` per process), `total` (epochs × steps, capped by `max_steps`), `warmup`, and
    the steps between checkpoints (`save_steps`) and between val checks (:func:`eval_interval`)."""

    batch_size: int
    accumulation: int
    steps_per_epoch: int
    total: int
    warmup: int
    save_steps: int
    check_every: int

    @classmethod
    def for_run(cls, n_examples: int, world: int, cfg: Mapping[str, Any]) -> Schedule:
        bs, accum = int(cfg["per_device_batch_size"]), int(cfg["gradient_accumulation_steps"])
        micro_per_epoch = math.ceil(math.ceil(n_examples / world) / bs)
        steps_per_epoch = math.ceil(micro_per_epoch / accum)
        total = int(cfg["epochs"]) * steps_per_epoch
        if cfg.get("max_steps"):
            total = min(total, int(cfg["max_steps"]))
        save_steps = int(cfg["save_steps"])
        check_every = eval_interval(save_steps, steps_per_epoch, int(cfg.get("evals_per_epoch") or steps_per_epoch))
        return cls(bs, accum, steps_per_epoch, total, math.ceil(float(cfg["warmup_ratio"]) * total), save_steps,
                   check_every)

    def checkpoint_after(self, step: int) -> bool:
        return step % self.save_steps == 0 or step == self.total

    def steps(self, n_examples: int, seed: int, rank: int, world: int,
              done: int = 0) -> Iterator[tuple[int, int, list[list[int]]]]:
        """(step number, epoch, this process' micro-batches of sample indices) of every optimizer
        step after the first `done`: the epochs' seeded orders (:func:`epoch_order`) cut into
        micro-batches and those into steps, so a resumed run takes exactly the steps it missed."""
        step = done
        for epoch in range(done // self.steps_per_epoch, math.ceil(self.total / self.steps_per_epoch)):
            order = epoch_order(n_examples, seed, epoch, rank, world)
            micro = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            groups = [micro[i:i + self.accumulation] for i in range(0, len(micro), self.accumulation)]
            for group in groups[step - epoch * self.steps_per_epoch:]:
                if step >= self.total:
                    return
                step += 1
                yield step, epoch, group


def _check_train_set(train_set: Sequence[Encoded], splits: Mapping[str, str] | None) -> None:
    if splits is not None:
        bad = sorted(e.sample_id for e in train_set if splits.get(e.sample_id) != "train")
        if bad:
            raise ValueError(f"non-train samples in the training set: {bad[:5]}")
    if not train_set:
        raise ValueError("no training examples")


def _optimizer(model: FameModel, cfg: Mapping[str, Any], schedule: Schedule,
               device: torch.device) -> tuple[list[torch.nn.Parameter], torch.optim.Optimizer, Any]:
    """(trainable parameters, AdamW, learning-rate scheduler); gradient checkpointing on when
    `gradient_checkpointing` is true, or `auto` on CUDA."""
    gc_setting = cfg["gradient_checkpointing"]
    if gc_setting is True or (gc_setting == "auto" and device.type == "cuda"):
        model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(cfg["learning_rate"]),
                                  weight_decay=float(cfg["weight_decay"]),
                                  betas=(float(cfg["adam_beta1"]), float(cfg["adam_beta2"])),
                                  eps=float(cfg["adam_epsilon"]))
    return params, optimizer, _make_scheduler(optimizer, cfg["lr_scheduler"], schedule.warmup, schedule.total)


def _optimizer_step(accelerator: Any, model: Any, optimizer: Any, scheduler: Any,
                    params: list[torch.nn.Parameter], batches: Iterable[dict[str, torch.Tensor]],
                    n_batches: int, max_grad_norm: float | None) -> tuple[float, float]:
    """One optimizer step over `n_batches` accumulated micro-batches → (its loss, the learning
    rate it used)."""
    loss_sum = 0.0
    for batch in batches:
        loss = model(**batch).loss / n_batches
        accelerator.backward(loss)
        loss_sum += float(loss.detach())
    if max_grad_norm:
        accelerator.clip_grad_norm_(params, float(max_grad_norm))
    lr = scheduler.get_last_lr()[0]  # the rate this step used
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, lr


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

    _check_train_set(train_set, splits)
    accelerator = Accelerator()
    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    seed = int(cfg["seed"])
    set_seed(seed)
    schedule = Schedule.for_run(len(train_set), world, cfg)
    params, optimizer, scheduler = _optimizer(model, cfg, schedule, device)
    state = resume(accelerator, Path(ckpt_dir), fingerprint, model, optimizer, scheduler, schedule.total)
    model.train()
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped: FameModel = accelerator.unwrap_model(model)
    bs = schedule.batch_size
    val_check = validation_subset(val_set, cfg.get("val_max_samples"), seed)
    log.info("training: %d examples, %d val (%d scored every %d steps), %d process(es), %d steps "
             "(%d per epoch), checkpoint every %d, warmup %d", len(train_set), len(val_set), len(val_check),
             schedule.check_every, world, schedule.total, schedule.steps_per_epoch, schedule.save_steps,
             schedule.warmup)
    started = time.time()
    checkpoint = Checkpointer(Path(ckpt_dir), fingerprint, int(cfg["keep_checkpoints"]), schedule.check_every,
                              schedule.total, partial(evaluate_loss, unwrapped, val_check, videos, bs, pad_id,
                                                      device, audios), unwrapped, optimizer, scheduler, accelerator)
    for step, epoch, group in schedule.steps(len(train_set), seed, rank, world, state.step):
        batches = (to_device(collate([train_set[i] for i in idx], videos, pad_id, audios=audios), device)
                   for idx in group)
        loss, lr = _optimizer_step(accelerator, model, optimizer, scheduler, params, batches, len(group),
                                   cfg.get("max_grad_norm"))
        state.step = step
        state.history.append({"step": step, "epoch": epoch, "loss": loss, "lr": lr})
        if step % int(cfg["log_steps"]) == 0 or step == schedule.total:
            log.info("step %d/%d epoch %d loss %.4f lr %.3g", step, schedule.total, epoch, loss, lr)
        if schedule.checkpoint_after(step):
            checkpoint(state)
        if after_step is not None:
            after_step(step)
    whole_val = partial(evaluate_loss, unwrapped, val_set, videos, bs, pad_id, device, audios)
    selected = checkpoint.select(state, whole_val if len(val_check) < len(val_set) else None)
    return {"steps": state.step, "total_steps": schedule.total, "steps_per_epoch": schedule.steps_per_epoch,
            "warmup_steps": schedule.warmup, "world_size": world, "history": state.history, "evals": state.evals,
            "best": state.best, "selected": selected, "resumed_from": state.resumed_from,
            "seconds": round(time.time() - started, 3), "n_train": len(train_set), "n_val": len(val_set),
            "n_val_per_check": len(val_check), "eval_every_steps": schedule.check_every, "is_main_process": rank == 0}
