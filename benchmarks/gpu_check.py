"""The GPU check: one command that measures the paper configuration's GPU paths and prints a table.

On a GPU (default, real dimensions; about 3–6 minutes on one H100-class GPU, under 8 anywhere):
  1. dense bf16 matmul throughput (8192³), beside the GPU's nominal dense bf16 peak when known;
  2. the vision encoder at CLIP ViT-L/14's real dimensions (random weights), through the pipeline's
     own `VisionPatchEncoder` (uint8 frames, folded normalisation, penultimate layer) in bf16:
     frames/s and the fraction of the peak its FLOPs reach;
  3. FAME-Net's training step at the paper's setting: a LLaMA-7B-shaped frozen LLM (random bf16
     weights at real dimensions) + the trained 1024 → 4096 projector, batch 4 × 512 tokens (356
     video + text), gradient checkpointing: tokens/s, MFU and peak memory;
  4. batched generation (batch 16, 512-token prompts): new tokens/s;
  5. a 2-process DDP training step when 2 GPUs are visible (skipped otherwise).
`--small` runs the same code at reduced dimensions, on the CPU when there is no GPU: the unit test
runs it so the script cannot rot.

    python benchmarks/gpu_check.py [--small] [--steps 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import LLAMA_7B, N_VIDEO, PLACEHOLDER, _batch, _model  # noqa: E402

# Dense (non-sparse) bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s.
NOMINAL_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0,
                       "A10": 125.0, "RTX 4090": 165.2, "RTX 6000 Ada": 364.2, "V100": 125.0}
CLIP_L14 = {"hidden_size": 1024, "num_layers": 24, "num_heads": 16, "intermediate_size": 4096}
SMALL_CLIP = {"hidden_size": 64, "num_layers": 3, "num_heads": 2, "intermediate_size": 128}
SMALL_LLM = {"vocab_size": 1000, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 1024}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str, steps: int) -> float:
    """Seconds per call after one warm-up call."""
    fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def nominal_peak(device: str) -> float | None:
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in NOMINAL_BF16_TFLOPS.items() if k in name), None)


def matmul_tflops(device: str, dtype: torch.dtype, n: int, steps: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, device, steps) / 1e12


def vision_check(device: str, dtype: str, sizes: dict, batch: int, steps: int) -> dict:
    """Frames/s of the pipeline's encoder on a random CLIP ViT at `sizes` (224 px, 14-px patches)."""
    from ecem.features.encoder import VisionPatchEncoder
    from ecem.features.tiny_models import build_tiny_clip

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_clip(Path(tmp) / "clip", image_size=224, hidden_size=sizes["hidden_size"],
                               num_layers=sizes["num_layers"], num_heads=sizes["num_heads"],
                               intermediate_size=sizes["intermediate_size"])
        enc = VisionPatchEncoder(str(path), 224, 100, hidden_layer=-2, dtype=dtype, device=device)
    frames = np.random.default_rng(0).integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
    pixels = enc.preprocess(frames)
    dt = timed(lambda: enc.encode(pixels), device, steps)
    d, layers, tokens = sizes["hidden_size"], sizes["num_layers"] - 1, 257  # penultimate layer runs
    per_layer = 2 * tokens * (4 * d * d + 2 * d * sizes["intermediate_size"]) + 4 * tokens * tokens * d
    flops = batch * (layers * per_layer + 2 * tokens * 3 * 14 * 14 * d)
    return {"frames_per_s": batch / dt, "tflops": flops / dt / 1e12}


def llm_flops_per_token(sizes: dict, seq: int) -> float:
    """Forward FLOPs per token of a LLaMA decoder (matmuls + attention scores), embeddings excluded."""
    d, ff, layers = sizes["hidden_size"], sizes["intermediate_size"], sizes["num_hidden_layers"]
    kv = d * sizes["num_key_value_heads"] // sizes["num_attention_heads"]
    per_layer = 2 * (2 * d * d + 2 * d * kv + 3 * d * ff) + 4 * seq * d
    return layers * per_layer + 2 * d * sizes["vocab_size"]


def train_check(device: str, dtype: torch.dtype, sizes: dict, batch: int, seq: int, steps: int,
                vision_dim: int) -> dict:
    """The paper's step: frozen LLM, projector trained, gradient checkpointing (as on CUDA)."""
    model = _model(sizes, dtype, device, vision_dim)
    model.set_trainable(["projector.*"])
    model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)
    data = _batch(batch, seq, sizes["vocab_size"], vision_dim, device, with_video=True)

    def step() -> None:
        model(**data).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    dt = timed(step, device, steps)
    # MFU counts the model's useful FLOPs: the forward, and the backward to the activations (the
    # weights are frozen, so one matmul per weight instead of two); checkpointing's recomputed
    # forward is not counted, as is usual for MFU.
    useful = 2 * llm_flops_per_token(sizes, seq) * batch * seq
    out = {"tokens_per_s": batch * seq / dt, "step_s": dt, "tflops": useful / dt / 1e12,
           "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}
    out.update(generation_check(model, device, sizes, vision_dim))
    return out


def generation_check(model, device: str, sizes: dict, vision_dim: int, batch: int | None = None,
                     prompt: int = 512, new: int | None = None) -> dict:
    batch = batch or (16 if device == "cuda" else 2)
    new = new or (64 if device == "cuda" else 8)
    model.eval()
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(10, sizes["vocab_size"], (batch, prompt), generator=g)
    ids[:, 8:8 + N_VIDEO] = PLACEHOLDER
    video = torch.randn(batch * N_VIDEO, vision_dim, generator=g).to(device)
    ids = ids.to(device)
    mask = torch.ones_like(ids)
    kwargs = {"max_new_tokens": new, "min_new_tokens": new, "do_sample": False, "pad_token_id": 0}
    dt = timed(lambda: model.generate(ids, mask, video, **kwargs), device, 1)
    return {"gen_tokens_per_s": batch * new / dt}


def _ddp_worker(rank: int, world: int, sizes: dict, batch: int, seq: int, steps: int, vision_dim: int,
                out: dict) -> None:
    import torch.distributed as dist

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    dist.init_process_group("nccl", rank=rank, world_size=world)
    torch.cuda.set_device(rank)
    model = _model(sizes, torch.bfloat16, f"cuda:{rank}", vision_dim)
    model.set_trainable(["projector.*"])
    model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)
    data = _batch(batch, seq, sizes["vocab_size"], vision_dim, f"cuda:{rank}", with_video=True)

    def step() -> None:
        ddp(**data).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    dt = timed(step, "cuda", steps)
    if rank == 0:
        out["tokens_per_s"] = world * batch * seq / dt
        out["step_s"] = dt
    dist.destroy_process_group()


def ddp_check(sizes: dict, batch: int, seq: int, steps: int, vision_dim: int) -> dict | None:
    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return None
    import torch.multiprocessing as mp

    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_ddp_worker, args=(2, sizes, batch, seq, steps, vision_dim, out), nprocs=2)
        return dict(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="reduced dimensions (runs on the CPU too)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.small:
        raise SystemExit("no GPU visible: run with --small to check the script on the CPU")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    clip, llm = (SMALL_CLIP, SMALL_LLM) if args.small else (CLIP_L14, LLAMA_7B)
    vision_dim = clip["hidden_size"]
    batch, seq = 4, N_VIDEO + 156  # the paper's per-device batch; 356 video + prompt and answer
    t_start = time.perf_counter()
    peak = nominal_peak(device)
    measured = matmul_tflops(device, dtype, 8192 if device == "cuda" else 1024, args.steps)
    ref = peak or measured
    vision = vision_check(device, "bfloat16" if device == "cuda" else "float32", clip,
                          256 if device == "cuda" else 4, args.steps)
    train = train_check(device, dtype, llm, batch, seq, args.steps, vision_dim)
    ddp = ddp_check(llm, batch, seq, args.steps, vision_dim) if device == "cuda" else None
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"GPU check on {name}, {'reduced' if args.small else 'real'} dimensions, dtype "
          f"{str(dtype).split('.')[-1]}, torch {torch.__version__}; peak used for fractions: "
          f"{'nominal' if peak else 'measured matmul'} {ref:.3g} TFLOP/s")
    rows = [
        ("matmul (dense)", f"{measured:.3g} TFLOP/s", f"{measured / ref:.0%}" if peak else "100% (ref)"),
        (f"vision ViT {clip['hidden_size']}x{clip['num_layers']}", f"{vision['frames_per_s']:,.0f} frames/s",
         f"{vision['tflops'] / ref:.1%}"),
        (f"train step LLM {llm['hidden_size']}x{llm['num_hidden_layers']}",
         f"{train['tokens_per_s']:,.0f} tokens/s ({train['step_s']:.3f} s)", f"MFU {train['tflops'] / ref:.1%}"),
        ("train peak memory", f"{train['peak_gb']:.1f} GiB" if train["peak_gb"] is not None else "n/a (CPU)", ""),
        ("generation", f"{train['gen_tokens_per_s']:,.0f} new tokens/s", ""),
        ("DDP 2 processes", f"{ddp['tokens_per_s']:,.0f} tokens/s ({ddp['step_s']:.3f} s)" if ddp
         else "skipped (fewer than 2 GPUs)", ""),
    ]
    print(f"{'check':<34}{'result':<40}{'of peak':>10}")
    for row in rows:
        print(f"{row[0]:<34}{row[1]:<40}{row[2]:>10}")
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
