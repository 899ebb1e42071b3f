"""Which torch device a stage runs on: one rule for every stage's `device` setting."""

from __future__ import annotations


def resolve_device(name: str, key: str = "device") -> str:
    """`cpu`, `cuda`, `cuda:N`, or `auto` (CUDA when torch sees a GPU, else the CPU). Asking for
    CUDA on a machine without it is an error naming the config `key`, never a silent CPU run."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"{key} is {name!r} but torch sees no CUDA device")
    return name
