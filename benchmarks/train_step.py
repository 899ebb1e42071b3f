"""FAME-Net training-step throughput and peak memory.

CPU (default): the demo's tiny random LLaMA (config.yaml `fame.tiny_llm`), batch 4, each sample
= the paper's 356 video tokens (100 temporal + 256 spatial, D from `--vision-dim`) + ~60 prompt
and answer tokens. Rows, each measured in a fresh subprocess so peak RSS is its own:
  - `lm_full` (baseline): a plain LM step on token ids, every LLM weight trained;
  - `fame_projector`: the FAME-Net step — splice projected video tokens, frozen LLM, projector
    trained (the paper's setting);
  - `fame_projector_gc`: the same with gradient checkpointing.
Ratios are against the baseline row of the same run.

GPU (`--gpu`, needs CUDA): a LLaMA-7B-shaped config (hidden 4096, 32 layers, 32 heads, 11008,
vocab 32000) with random bf16 weights, batch 4 × 2048 tokens (356 video + text), LLM frozen,
projector 1024 → 4096 trained; reports tokens/s, step time and peak GPU memory, naming the GPU.

    python benchmarks/train_step.py [--steps 5] [--gpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
N_VIDEO = 356
PLACEHOLDER = 3  # any id: the splice replaces those positions
LLAMA_7B = {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096}


def _model(sizes: dict, dtype: torch.dtype, device: str, vision_dim: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    from ecem.fame.model import FameModel

    torch.manual_seed(0)
    cfg = LlamaConfig(**{k: sizes[k] for k in LLAMA_7B}, tie_word_embeddings=False)
    with torch.device(device):
        llm = LlamaForCausalLM(cfg).to(dtype)
        model = FameModel(llm, vision_dim, PLACEHOLDER).to(device)
    return model


def _batch(batch: int, seq: int, vocab: int, vision_dim: int, device: str, with_video: bool):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(10, vocab, (batch, seq), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, -30:] = ids[:, -30:]
    video = None
    if with_video:
        ids[:, 20:20 + N_VIDEO] = PLACEHOLDER
        video = torch.randn(batch * N_VIDEO, vision_dim, generator=g)
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "labels": labels.to(device), "video": video.to(device) if video is not None else None}


def child(spec: dict) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    dtype = getattr(torch, spec["dtype"])
    model = _model(spec["sizes"], dtype, device, spec["vision_dim"])
    if spec["row"] == "lm_full":
        model.set_trainable(["llm.*"])
    else:
        model.set_trainable(["projector.*"])
    if spec["row"].endswith("_gc"):
        model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5)
    batch = _batch(spec["batch"], spec["seq"], spec["sizes"]["vocab_size"], spec["vision_dim"], device,
                   with_video=spec["row"] != "lm_full")

    def step():
        out = model(**batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up (allocator, optimizer state)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    for _ in range(spec["steps"]):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / spec["steps"]
    res = {"row": spec["row"], "step_s": dt, "tokens_per_s": spec["batch"] * spec["seq"] / dt,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_before_mb": base_rss,
           "trainable": sum(p.numel() for p in params)}
    if device == "cuda":
        res["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 2**30
        res["gpu"] = torch.cuda.get_device_name()
    return res


def run_row(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                          text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vision-dim", type=int, default=1024)
    ap.add_argument("--gpu", action="store_true", help="LLaMA-7B-shaped bf16 model on CUDA")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if args.gpu:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu needs CUDA")
        spec = {"sizes": LLAMA_7B, "dtype": "bfloat16", "device": "cuda", "batch": 4, "seq": 2048,
                "vision_dim": args.vision_dim, "steps": args.steps, "threads": args.threads}
        rows = ["fame_projector", "fame_projector_gc"]
    else:
        tiny = yaml.safe_load((REPO / "config.yaml").read_text())["fame"]["tiny_llm"]
        sizes = {**{k: tiny[k] for k in LLAMA_7B if k != "vocab_size"}, "vocab_size": tiny["vocab_size"]}
        spec = {"sizes": sizes, "dtype": "float32", "device": "cpu", "batch": 4, "seq": N_VIDEO + 60,
                "vision_dim": args.vision_dim, "steps": args.steps, "threads": args.threads}
        rows = ["lm_full", "fame_projector", "fame_projector_gc"]
    results = [run_row({**spec, "row": r}) for r in rows]
    base = results[0]
    print(f"device: {results[0].get('gpu', 'CPU')} ({spec['threads']} threads), dtype {spec['dtype']}, "
          f"batch {spec['batch']} x {spec['seq']} tokens ({N_VIDEO} video), "
          f"LLM {spec['sizes']['hidden_size']} wide x {spec['sizes']['num_hidden_layers']} layers, "
          f"{args.steps} timed steps")
    mem_key = "peak_gpu_gb" if args.gpu else "peak_rss_mb"
    print(f"{'row':<20}{'trainable':>12}{'step s':>10}{'tokens/s':>12}{'ratio':>8}{mem_key:>14}{'ratio':>8}")
    for r in results:
        print(f"{r['row']:<20}{r['trainable']:>12,}{r['step_s']:>10.4f}{r['tokens_per_s']:>12.0f}"
              f"{r['tokens_per_s'] / base['tokens_per_s']:>8.2f}{r[mem_key]:>14.1f}"
              f"{r[mem_key] / base[mem_key]:>8.2f}")


if __name__ == "__main__":
    main()
