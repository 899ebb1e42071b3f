"""Tiny random CLIP vision towers for the smoke config and the tests (`random:<name>` models).

A real `CLIPVisionModel` architecture built from a `CLIPVisionConfig` with seeded random weights,
saved with `save_pretrained` beside a `CLIPImageProcessor` carrying CLIP's own settings (OpenAI
mean/std, shortest-edge resize, centre crop) for its image size. The feature code then loads it
through `from_pretrained` exactly as it loads `openai/clip-vit-large-patch14`. A marker file
(`ecem_model.json`) says the weights are random, and the feature metadata repeats it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ecem.artifacts import atomic_dir
from ecem.model_refs import write_model_card


def build_tiny_clip(out_dir: str | Path, image_size: int = 224, hidden_size: int = 32,
                    num_layers: int = 2, num_heads: int = 2, intermediate_size: int = 64,
                    patch_size: int = 14, seed: int = 0) -> Path:
    """Build and save a seeded random CLIPVisionModel + CLIPImageProcessor into `out_dir`.

    The directory is assembled beside `out_dir` and renamed into place, so a killed build never
    leaves a half-written model. Same arguments → byte-identical weight files.
    """
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    if image_size % patch_size:
        raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} is not a multiple of num_heads {num_heads}")
    config = CLIPVisionConfig(
        hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, image_size=image_size,
        patch_size=patch_size, projection_dim=hidden_size, hidden_act="quick_gelu",
    )
    torch.manual_seed(seed)
    model = CLIPVisionModel(config).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                   crop_size={"height": image_size, "width": image_size})
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        write_model_card(tmp, random_weights=True, architecture="CLIPVisionModel", seed=seed,
                         built_by="ecem.features.tiny_models.build_tiny_clip",
                         config={"image_size": image_size, "hidden_size": hidden_size,
                                 "num_layers": num_layers, "num_heads": num_heads,
                                 "intermediate_size": intermediate_size, "patch_size": patch_size})
    return Path(out_dir)


def build_tiny_clip_from_config(out_dir: str | Path, image_size: int, tiny: Mapping[str, Any]) -> Path:
    """`build_tiny_clip` with the `features.clip.tiny` config section."""
    return build_tiny_clip(out_dir, image_size=int(image_size), hidden_size=int(tiny["hidden_size"]),
                           num_layers=int(tiny["num_layers"]), num_heads=int(tiny["num_heads"]),
                           intermediate_size=int(tiny["intermediate_size"]),
                           patch_size=int(tiny["patch_size"]), seed=int(tiny["seed"]))
