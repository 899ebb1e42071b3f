"""Synthetic FAME-Net inputs for the unit tests: a real tiny LLaMA + BPE tokenizer, random video
tokens, short cause sentences. Also the child process of the kill-and-resume test."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecem.chat import PromptFormat
from ecem.fame.data import encode
from ecem.fame.model import FameModel, ensure_placeholder, load_llm
from ecem.fame.tiny import build_tiny_llm

PLACEHOLDER = "<video>"
PLAIN = PromptFormat("plain")  # the paper's USER: ... ASSISTANT: text
VISION_DIM = 16
N_VIDEO = 6
EMOTIONS = ["joy", "anger", "fear", "sadness", "surprise", "disgust", "joy", "anger"]
CAUSES = [
    "Joey is happy because dinner is finally ready.",
    "Phoebe is angry because the lasagna has meat.",
    "Rachel is afraid because someone knocks on the door.",
    "Monica is sad because she forgot about Phoebe.",
    "Ross is surprised because the lasagna has meat.",
    "Rachel is disgusted because the fridge smells of fish.",
    "Phoebe is happy because she got the lead in the play.",
    "Chandler is angry because the meeting is long.",
]
TINY = {"seed": 0, "vocab_size": 350, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512}
TRAIN_CFG = {"seed": 7, "epochs": 4, "max_steps": None, "per_device_batch_size": 2,
             "gradient_accumulation_steps": 1, "learning_rate": 5e-3, "weight_decay": 0.0, "adam_beta1": 0.9,
             "adam_beta2": 0.999, "adam_epsilon": 1e-8, "max_grad_norm": 1.0, "warmup_ratio": 0.03,
             "lr_scheduler": "cosine", "max_length": 256, "save_steps": 3, "evals_per_epoch": 100, "val_max_samples": None, "keep_checkpoints": 2,
             "log_steps": 1,
             "gradient_checkpointing": "auto", "num_gpus": 0, "mem_mb": 1000, "runtime": 5}


def build_llm(out_dir: Path) -> Path:
    texts = [f"USER: Explain why the emotion of this statement is {e}. ASSISTANT:" for e in EMOTIONS] + CAUSES
    build_tiny_llm(out_dir, texts * 3, TINY, extra_special=[PLACEHOLDER])
    return out_dir


def prompt(i: int) -> str:
    """The user message of sample `s{i}` (PLAIN wraps it in USER: ... ASSISTANT:)."""
    return f"Explain why the emotion of this statement is {EMOTIONS[i]}. {PLACEHOLDER}"


def videos(n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"s{i}": rng.standard_normal((N_VIDEO, VISION_DIM)).astype(np.float16) for i in range(n)}


def load_model(llm_dir: Path, seed: int = 0) -> tuple[FameModel, Any]:
    llm, tok = load_llm(str(llm_dir), torch.float32)
    pid = ensure_placeholder(tok, PLACEHOLDER)
    torch.manual_seed(seed)
    model = FameModel(llm, VISION_DIM, pid)
    model.set_trainable(["projector.*"])
    return model, tok


def examples(tok: Any, placeholder_id: int, n: int = 8) -> list:
    return [enc(tok, placeholder_id, i) for i in range(n)]


def enc(tok: Any, placeholder_id: int, i: int, answer: str | None = "", text: str | None = None) -> Any:
    """Sample `s{i}` encoded: prompt `text` (default `prompt(i)`), answer CAUSES[i] unless given
    (None = for generation)."""
    return encode(tok, f"s{i}", text or prompt(i), CAUSES[i] if answer == "" else answer, PLAIN,
                  PLACEHOLDER, placeholder_id, N_VIDEO, 256)


def child(args_path: str) -> None:
    """The kill-and-resume test's child process: `train_run` with its arguments, logging to stderr."""
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True)
    torch.set_num_threads(1)
    train_run(json.loads(Path(args_path).read_text()))


def train_run(args: dict[str, Any]) -> None:
    """Train on the 8 synthetic samples with checkpoints in args['ckpt_dir']; save the weights."""
    from ecem.fame.train import train

    model, tok = load_model(Path(args["llm"]), seed=args["seed"])
    ex = examples(tok, model.placeholder_id)
    cfg = {**TRAIN_CFG, **args.get("train", {})}
    train(model, ex[:6], ex[6:], videos(), cfg, args["ckpt_dir"], "fp-test", tok.pad_token_id,
          after_step=pause_after(args.get("pause_at")))
    model.save_trainable(args["out"])


def pause_after(pause_at: int | None) -> Any:
    """A training callback that stops making progress after step `pause_at` (until killed)."""
    import logging
    import time

    def after_step(step: int) -> None:
        if pause_at and step >= pause_at:
            logging.getLogger(__name__).warning("step %d reached: pausing (waiting to be killed)", step)
            while True:
                time.sleep(60)

    return after_step if pause_at else None


if __name__ == "__main__":
    child(sys.argv[1])
