"""FAME-Net training: overfitting 8 samples, and exact resume after the job is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ecem.fame.train import epoch_order, evaluate_loss, train
from tests.helpers import REPO
from tests.unit import fame_synthetic as syn


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_tiny_run_overfits_eight_samples(llm_dir, tmp_path):
    # A frozen random tiny LM has near-uniform logits whatever its input (RMSNorm bounds them), so
    # the overfitting check trains the projector together with the LM head.
    model, tok = syn.load_model(llm_dir)
    assert model.set_trainable(["projector.*", "llm.lm_head.*"]) == ["llm.lm_head.weight", "projector.weight",
                                                                      "projector.bias"]
    ex, vids = syn.examples(tok, model.placeholder_id), syn.videos()
    before = evaluate_loss(model, ex, vids, 8, tok.pad_token_id, torch.device("cpu"))
    cfg = {**syn.TRAIN_CFG, "learning_rate": 3e-2, "epochs": 15, "per_device_batch_size": 4,
           "save_steps": 100}
    result = train(model, ex, [], vids, cfg, tmp_path / "ckpt", "fp", tok.pad_token_id)
    after = evaluate_loss(model, ex, vids, 8, tok.pad_token_id, torch.device("cpu"))
    assert result["steps"] == 30 and result["selected"] == "last"
    assert after <= 0.5 * before, (before, after)
    assert result["history"][-1]["loss"] < 0.5 * result["history"][0]["loss"]


def test_epoch_order_is_seeded_and_shards_cover_the_epoch():
    assert epoch_order(10, 1, 0, 0, 1) == epoch_order(10, 1, 0, 0, 1)
    assert epoch_order(10, 1, 0, 0, 1) != epoch_order(10, 1, 1, 0, 1)
    shards = [epoch_order(10, 1, 0, r, 3) for r in range(3)]
    assert sorted(sum(shards, [])) == sorted(list(range(10)) + epoch_order(10, 1, 0, 0, 1)[:2])
    assert len({len(s) for s in shards}) == 1


def _run_child(tmp: Path, llm: Path, name: str, pause_at: int | None = None, kill: bool = False) -> Path:
    args = {"llm": str(llm), "seed": 3, "ckpt_dir": str(tmp / f"{name}-ckpt"),
            "out": str(tmp / f"{name}.safetensors"), "pause_at": pause_at}
    args_path = tmp / f"{name}.json"
    args_path.write_text(json.dumps(args))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    log_path = tmp / f"{name}-{'killed' if kill else 'run'}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.unit.fame_synthetic", str(args_path)], cwd=REPO,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        if kill:
            deadline = time.time() + 120
            while "pausing" not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()
                assert time.time() < deadline, "child never reached the pause step"
                time.sleep(0.2)
            proc.send_signal(signal.SIGKILL)  # a real kill: no cleanup, no handler runs
        rc = proc.wait(timeout=300)
    if kill:
        assert rc == -signal.SIGKILL
    else:
        assert rc == 0, log_path.read_text()
    return log_path


def _run_here(tmp: Path, llm: Path, name: str) -> None:
    """What `_run_child` runs, in this process (one torch thread, as the child)."""
    syn.train_run({"llm": str(llm), "seed": 3, "ckpt_dir": str(tmp / f"{name}-ckpt"),
                   "out": str(tmp / f"{name}.safetensors"), "pause_at": None})


def test_killed_training_resumes_and_matches_an_uninterrupted_run(llm_dir, tmp_path, caplog):
    # 6 train samples, batch 2 → 3 steps/epoch × 4 epochs = 12 steps; checkpoints at 3, 6, 9, 12.
    # The killed run is a child process (a real SIGKILL); the others run here.
    _run_here(tmp_path, llm_dir, "straight")
    _run_child(tmp_path, llm_dir, "broken", pause_at=8, kill=True)  # killed after step 8, last checkpoint 6
    ckpts = sorted(p.name for p in (tmp_path / "broken-ckpt").glob("step-*"))
    assert ckpts == ["step-00000003", "step-00000006"], ckpts
    assert not (tmp_path / "broken.safetensors").exists()
    with caplog.at_level("INFO", logger="ecem.fame"):  # train and checkpoints
        _run_here(tmp_path, llm_dir, "broken")
    assert "resuming from" in caplog.text and "step-00000006 (step 6 of 12)" in caplog.text
    for name in ("broken", "straight"):  # both end at step 12
        assert (tmp_path / f"{name}-ckpt" / "step-00000012").is_dir()
    straight = load_file(str(tmp_path / "straight.safetensors"))
    resumed = load_file(str(tmp_path / "broken.safetensors"))
    assert sorted(straight) == sorted(resumed) == ["projector.bias", "projector.weight"]
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-6, atol=1e-7)
    last_s = load_file(str(tmp_path / "straight-ckpt" / "step-00000012" / "trainable.safetensors"))
    last_r = load_file(str(tmp_path / "broken-ckpt" / "step-00000012" / "trainable.safetensors"))
    for key in last_s:
        torch.testing.assert_close(last_r[key], last_s[key], rtol=1e-6, atol=1e-7)
    # and training moved the weights away from their seeded initial values
    initial = syn.load_model(llm_dir, seed=3)[0].projector.weight.detach()
    assert not torch.allclose(last_s["projector.weight"], initial)


def test_checkpoints_of_another_configuration_are_not_resumed(llm_dir, tmp_path):
    model, tok = syn.load_model(llm_dir)
    ex, vids = syn.examples(tok, model.placeholder_id), syn.videos()
    cfg = {**syn.TRAIN_CFG, "epochs": 1}
    train(model, ex[:6], [], vids, cfg, tmp_path / "ckpt", "fingerprint-A", tok.pad_token_id)
    again = train(model, ex[:6], [], vids, cfg, tmp_path / "ckpt", "fingerprint-A", tok.pad_token_id)
    assert again["resumed_from"] == "step-00000003" and again["history"][-1]["step"] == 3
    other = train(model, ex[:6], [], vids, cfg, tmp_path / "ckpt", "fingerprint-B", tok.pad_token_id)
    assert other["resumed_from"] is None


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="this machine could launch 2 processes")
def test_multi_gpu_launch_stops_when_the_job_sees_fewer_gpus() -> None:
    from ecem.fame.launch import launch_train

    with pytest.raises(RuntimeError, match=r"train.num_gpus=2 .*resources gpu=2"):
        launch_train(2, experiment="never-started")


def test_checkpoints_score_a_bounded_val_subset_and_the_pick_the_whole_set(llm_dir, tmp_path):
    from ecem.fame.train import validation_subset

    model, tok = syn.load_model(llm_dir)
    ex, vids = syn.examples(tok, model.placeholder_id), syn.videos()
    subset = validation_subset(ex, 3, seed=7)
    assert len(subset) == 3 and subset == validation_subset(ex, 3, seed=7)  # the same at every check
    assert [e.sample_id for e in subset] == sorted(e.sample_id for e in subset)  # val-set order kept
    assert validation_subset(ex, None, 7) == ex and validation_subset(ex, 8, 7) == ex
    cfg = {**syn.TRAIN_CFG, "epochs": 1, "save_steps": 1, "val_max_samples": 3}
    result = train(model, ex[:4], ex[4:], vids, cfg, tmp_path / "ckpt", "fp", tok.pad_token_id)
    assert result["n_val"] == 4 and result["n_val_per_check"] == 3 and len(result["evals"]) == 2
    cpu = torch.device("cpu")
    # checkpoints were scored on the 3-sample subset; the selected weights on all 4 val samples
    assert result["best"]["full_val_loss"] == pytest.approx(evaluate_loss(model, ex[4:], vids, 2,
                                                                          tok.pad_token_id, cpu))
    assert result["best"]["val_loss"] == pytest.approx(
        evaluate_loss(model, validation_subset(ex[4:], 3, 7), vids, 2, tok.pad_token_id, cpu))


def test_val_checks_per_epoch_are_bounded_and_fall_on_checkpoints():
    from ecem.fame.train import eval_interval

    assert eval_interval(4, 4, 2) == 4  # the demo: every checkpoint
    assert eval_interval(500, 584, 2) == 500  # the paper config: every checkpoint
    assert eval_interval(4, 40, 2) == 20 and eval_interval(4, 41, 2) == 24  # a multiple of save_steps
    for steps_per_epoch in (10, 100, 1000, 10000):  # checks per epoch stay ≤ 2 at any size
        assert steps_per_epoch / eval_interval(2, steps_per_epoch, 2) <= 2
    assert eval_interval(3, 10, 100) == 3  # never more often than checkpoints


def test_training_scores_val_at_most_evals_per_epoch(llm_dir, tmp_path):
    model, tok = syn.load_model(llm_dir)
    ex, vids = syn.examples(tok, model.placeholder_id), syn.videos()
    cfg = {**syn.TRAIN_CFG, "epochs": 2, "per_device_batch_size": 1, "save_steps": 1, "evals_per_epoch": 2}
    result = train(model, ex[:6], ex[6:], vids, cfg, tmp_path / "ckpt", "fp", tok.pad_token_id)
    assert result["steps"] == 12 and result["eval_every_steps"] == 3
    assert [e["step"] for e in result["evals"]] == [3, 6, 9, 12]
    assert result["best"]["step"] in (3, 6, 9, 12)


def test_schedule_steps_cover_the_run_and_resume_where_they_stopped():
    from ecem.fame.train import Schedule

    # 7 examples in micro-batches of 2 (the last of each epoch holds 1), 2 per step → 2 steps an
    # epoch; 3 epochs capped at 5 steps, so the last epoch is cut after its first step
    cfg = {**syn.TRAIN_CFG, "epochs": 3, "max_steps": 5, "gradient_accumulation_steps": 2, "save_steps": 2}
    schedule = Schedule.for_run(7, 1, cfg)
    assert (schedule.steps_per_epoch, schedule.total, schedule.warmup, schedule.check_every) == (2, 5, 1, 2)
    full = list(schedule.steps(7, seed=1, rank=0, world=1))
    assert [(step, epoch) for step, epoch, _ in full] == [(1, 0), (2, 0), (3, 1), (4, 1), (5, 2)]
    assert [[len(m) for m in group] for _, _, group in full[:2]] == [[2, 2], [2, 1]]
    assert sorted(i for _, epoch, group in full if epoch == 0 for m in group for i in m) == list(range(7))
    for done in range(6):  # a run resumed after `done` steps takes exactly the ones it missed
        assert list(schedule.steps(7, 1, 0, 1, done)) == full[done:]
    assert [schedule.checkpoint_after(s) for s in range(1, 6)] == [False, True, False, True, True]
    # two processes: each takes 4 of the 7 (one wraps around), one step per epoch
    two = Schedule.for_run(7, 2, cfg)
    assert (two.steps_per_epoch, two.total) == (1, 3)
    shards = [[i for _, _, group in two.steps(7, 1, rank, 2) for m in group for i in m] for rank in (0, 1)]
    assert [len(s) for s in shards] == [12, 12]


def test_checkpoint_writer_keeps_the_newest_and_replaces_a_half_written_one(tmp_path):
    from ecem.fame.checkpoints import TrainState, _latest_checkpoint, save_checkpoint

    class Weights:  # the one FameModel method the writer calls
        def save_trainable(self, path):
            Path(path).write_bytes(b"w")

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    ckpt = tmp_path / "ckpt"
    (ckpt / "step-00000004.tmp").mkdir(parents=True)  # a writer killed mid-checkpoint
    (ckpt / "step-00000004.tmp" / "junk").write_text("x")
    for step in range(1, 5):
        save_checkpoint(ckpt, TrainState(step=step), Weights(), optimizer, scheduler, "fp", keep=2)
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-00000003", "step-00000004"]
    assert not (ckpt / "step-00000004" / "junk").exists()
    assert _latest_checkpoint(ckpt, "fp") == ckpt / "step-00000004"
    assert _latest_checkpoint(ckpt, "another") is None and not ckpt.exists()  # never mixed with another run
    save_checkpoint(ckpt, TrainState(step=1), Weights(), optimizer, scheduler, "fp", keep=0)  # keeps at least one
    assert [p.name for p in ckpt.iterdir()] == ["step-00000001"]
