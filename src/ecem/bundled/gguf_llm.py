"""A GGUF causal LM → a float32 safetensors transformers directory.

transformers reads GGUF files itself (``from_pretrained(dir, gguf_file=name)``, with the ``gguf``
package), dequantising every tensor — for SmolLM2-135M about 15–30 s on 2 cores. It refuses to
``save_pretrained`` a model loaded that way (it is marked as quantised), so the weights are copied
into a fresh model of the same class built from the same config, which saves normally and then
reloads in about a second. The tokenizer, with its chat template, comes from the same file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def convert(gguf_path: Path, out_dir: Path) -> dict[str, Any]:
    """Dequantise `gguf_path` into `out_dir` (model + tokenizer); facts for the model card."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                  dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(loaded)(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied output embeddings are one tensor under two names: only the tied name may be absent.
    tied = set(getattr(model, "_tied_weights_keys", None) or ()) if config.tie_word_embeddings else set()
    if unexpected or set(missing) - tied:
        raise ValueError(f"{gguf_path.name}: weights do not map onto {type(model).__name__}: "
                         f"missing {sorted(set(missing) - tied)[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = loaded.generation_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval().save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%s: %s, %.1f M parameters, vocabulary %d", gguf_path.name, type(model).__name__,
             n_params / 1e6, len(tokenizer))
    return {"architecture": type(model).__name__, "n_parameters": n_params,
            "vocab_size": len(tokenizer), "hidden_size": int(config.hidden_size),
            "num_hidden_layers": int(config.num_hidden_layers),
            "tie_word_embeddings": bool(config.tie_word_embeddings),
            "chat_template": tokenizer.chat_template is not None,
            "dtype": "float32 (dequantised from the GGUF's quantisation)"}
