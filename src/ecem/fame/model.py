"""The FAME-Net model: any Hugging Face causal LM plus a linear projector `g: R^D → R^K` for
the video tokens and, for an experiment that hears audio, a second one for the audio tokens.

The prompt carries one placeholder token per video token (the data code expands the single
placeholder of the prompt text to the clip's T+N tokens), and likewise one audio placeholder
token per audio token (A). `splice` embeds the text tokens with the LLM's own embedding table
and writes the projected video (and audio) tokens, in order, into exactly their placeholder
positions of `inputs_embeds`; training and generation both go through it, so what the model
sees while learning is what it sees while explaining.

Which parameters train is a list of glob patterns over this module's parameter names
(`projector.*` — the paper's setting —, `audio_projector.*`, or e.g. `llm.lm_head.*`); only
those are saved (safetensors), so a checkpoint of a 7B run stays a few megabytes.
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.utils import ModelOutput

from ecem.devices import supports_bf16

log = logging.getLogger(__name__)
IGNORE = -100  # label of positions outside the answer (ecem.fame.data masks the prompt with it)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str, device: torch.device | str) -> torch.dtype:
    """`auto` → bfloat16 where the device computes it natively (a CUDA GPU that supports it, a
    CPU with AVX512-BF16 or AMX: `ecem.devices.supports_bf16`), float32 elsewhere. The frozen LLM
    takes this dtype; the trained projectors stay float32."""
    if name == "auto":
        return torch.bfloat16 if supports_bf16(torch.device(device).type) else torch.float32
    return DTYPES[name]


def load_llm(name_or_path: str, dtype: torch.dtype) -> tuple[nn.Module, Any]:
    """Load a causal LM and its tokenizer through the ordinary `from_pretrained` path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    llm = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
    return llm, tokenizer


def ensure_placeholder(tokenizer: Any, token: str) -> int:
    """Make `token` a single special token of `tokenizer` (and give it a pad token); return its id.

    The placeholder id may lie beyond the LLM's embedding table: it is never looked up, because
    `splice` replaces those positions before the embeddings are used.
    """
    if token not in tokenizer.get_vocab():
        tokenizer.add_tokens([token], special_tokens=True)  # beside, never replacing, other placeholders
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"placeholder {token!r} does not tokenize to one token: {ids}")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return int(ids[0])


@dataclass
class AnswerLoss(ModelOutput):
    """What `FameModel.forward` returns: `loss` (mean over the batch's answer tokens), and per
    sample the summed negative log-likelihood `nll` of its answer tokens and their number."""

    loss: torch.Tensor | None = None
    nll: torch.Tensor | None = None
    n_tokens: torch.Tensor | None = None


class FameModel(nn.Module):
    """A causal LM whose placeholder positions receive linearly projected video tokens — and,
    when built with `audio_dim`, audio tokens through a second projector at their own
    placeholder (`audio_projector`, spliced exactly like the video)."""

    def __init__(self, llm: nn.Module, vision_dim: int, placeholder_id: int, audio_dim: int | None = None,
                 audio_placeholder_id: int | None = None):
        super().__init__()
        self.llm = llm
        self.embed_dim = int(llm.get_input_embeddings().embedding_dim)
        self.vision_dim = int(vision_dim)
        self.projector = nn.Linear(self.vision_dim, self.embed_dim)
        self.placeholder_id = int(placeholder_id)
        if (audio_dim is None) != (audio_placeholder_id is None):
            raise ValueError("an audio projector needs both audio_dim and audio_placeholder_id")
        self.audio_dim = None if audio_dim is None else int(audio_dim)
        self.audio_placeholder_id = None if audio_placeholder_id is None else int(audio_placeholder_id)
        self.audio_projector = None if audio_dim is None else nn.Linear(int(audio_dim), self.embed_dim)

    def projector_for(self, modality: str) -> nn.Linear:
        """`video` → the projector, `audio` → the audio projector (an error when there is none)."""
        if modality == "video":
            return self.projector
        if modality == "audio" and self.audio_projector is not None:
            return self.audio_projector
        raise ValueError(f"this model has no {modality} projector")

    # ---------------------------------------------------------------- parameters
    def set_trainable(self, patterns: Sequence[str]) -> list[str]:
        """Freeze everything, then unfreeze the parameters whose names match a glob in `patterns`."""
        names = []
        for name, param in self.named_parameters():
            param.requires_grad_(any(fnmatch.fnmatchcase(name, p) for p in patterns))
            if param.requires_grad:
                names.append(name)
        if not names:
            raise ValueError(f"no parameter matches the trainable patterns {list(patterns)}")
        return names

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu().contiguous() for n, p in self.named_parameters() if p.requires_grad}

    def save_trainable(self, path: str | Path, metadata: dict[str, str] | None = None) -> None:
        save_file(self.trainable_state_dict(), str(path), metadata=metadata)

    def load_trainable(self, path: str | Path) -> None:
        state = load_file(str(path))
        own = dict(self.named_parameters())
        unknown = sorted(set(state) - set(own))
        if unknown:
            raise KeyError(f"{path}: weights for unknown parameters {unknown[:5]}")
        with torch.no_grad():
            for name, tensor in state.items():
                own[name].copy_(tensor.to(own[name].dtype))

    def init_projector(self, path: str | Path | None, key_prefix: str | None = None) -> None:
        """Load a LLaVA-style linear projector (`mm_projector.bin` / `.safetensors`), or keep the
        random init when `path` is None. The checkpoint must hold one linear layer of shape (K, D)."""
        if path is None:
            return
        path = Path(path)
        state = load_file(str(path)) if path.suffix == ".safetensors" else torch.load(
            path, map_location="cpu", weights_only=True)
        if key_prefix is None:
            weights = [k for k in state if k.endswith("mm_projector.weight") or k == "weight"]
            if len(weights) != 1:
                raise ValueError(f"{path}: cannot find one linear projector weight among {sorted(state)[:8]}"
                                 " (a LLaVA-1.5 MLP projector is not FAME-Net's linear layer); set "
                                 "fame.projector.key_prefix")
            key_prefix = weights[0][: -len("weight")]
        weight, bias = state[f"{key_prefix}weight"], state.get(f"{key_prefix}bias")
        if tuple(weight.shape) != (self.embed_dim, self.vision_dim):
            raise ValueError(f"{path}: projector weight has shape {tuple(weight.shape)}, the model needs "
                             f"({self.embed_dim}, {self.vision_dim}) = (LLM width, vision width)")
        with torch.no_grad():
            self.projector.weight.copy_(weight.float())
            if bias is not None:
                self.projector.bias.copy_(bias.float())
        log.info("projector initialised from %s (%s*)", path, key_prefix)

    # ---------------------------------------------------------------- scale
    @torch.no_grad()
    def embedding_norm(self, chunk: int = 8192) -> float:
        """Mean L2 norm of the LLM's token embeddings, as its embedding *module* returns them
        (some families scale inside the module, e.g. by sqrt(hidden)), over the whole vocabulary."""
        embedding = self.llm.get_input_embeddings()
        device = embedding.weight.device
        total, n = 0.0, int(embedding.num_embeddings)
        for start in range(0, n, chunk):
            ids = torch.arange(start, min(n, start + chunk), device=device)
            total += float(embedding(ids).float().norm(dim=-1).sum())
        return total / n

    @torch.no_grad()
    def projection_norms(self, video: np.ndarray, max_rows: int = 4096,
                         modality: str = "video") -> dict[str, float]:
        """Mean L2 norm of projected tokens (an even subsample of `video`'s rows; `modality`
        picks the projector) beside the token embeddings' — the two should be of one scale for
        the LLM to read them."""
        projector = self.projector_for(modality)
        rows = np.asarray(video)[:: max(1, len(video) // max_rows)]
        weight = projector.weight
        projected = projector(torch.from_numpy(np.ascontiguousarray(rows, np.float32)).to(weight))
        return {"projected_norm": float(projected.norm(dim=-1).mean()), "embedding_norm": self.embedding_norm()}

    @torch.no_grad()
    def match_embedding_scale(self, video: np.ndarray, modality: str = "video") -> dict[str, float]:
        """Rescale the (random) projector so its outputs on `video` have the embeddings' mean norm.

        A default-initialised linear layer maps vision features (DINOv2's hidden states reach
        norms in the tens) to vectors whose size has nothing to do with the LLM's embeddings
        (SmolLM2's average 3.2); tokens far off that scale swamp or vanish in attention and the
        first steps are spent fixing the scale instead of the content. One scalar fixes it."""
        projector = self.projector_for(modality)
        before = self.projection_norms(video, modality=modality)
        factor = before["embedding_norm"] / max(before["projected_norm"], 1e-12)
        projector.weight.mul_(factor)
        projector.bias.mul_(factor)
        log.info("%s projector scaled by %.4g: projected norm %.3g → %.3g (embeddings %.3g)", modality, factor,
                 before["projected_norm"], before["projected_norm"] * factor, before["embedding_norm"])
        return {"init_factor": factor, "init_projected_norm": before["projected_norm"] * factor,
                "embedding_norm": before["embedding_norm"]}

    # ---------------------------------------------------------------- embedding
    def splice(self, input_ids: torch.Tensor, video: torch.Tensor | None,
               audio: torch.Tensor | None = None) -> torch.Tensor:
        """`inputs_embeds` for `input_ids` (B, L) with the video placeholder positions, row-major,
        taking the projected rows of `video` (M, D) — all video tokens of the batch, concatenated
        in order — and the audio placeholder positions likewise those of `audio`."""
        embedding = self.llm.get_input_embeddings()
        slots = [("video", self.placeholder_id, video)]
        if self.audio_placeholder_id is not None:
            slots.append(("audio", self.audio_placeholder_id, audio))
        elif audio is not None and audio.shape[0]:
            raise ValueError("audio tokens given to a model without an audio projector")
        masks = [input_ids == pid for _, pid, _ in slots]
        safe_ids = input_ids
        for mask in masks:
            safe_ids = safe_ids.masked_fill(mask, 0)
        embeds = embedding(safe_ids)
        for (modality, _, tokens), mask in zip(slots, masks, strict=True):
            n_slots = int(mask.sum())
            if tokens is None or tokens.shape[0] == 0:
                if n_slots:
                    raise ValueError(f"{n_slots} {modality} placeholder positions but no {modality} tokens")
                continue
            if tokens.shape[0] != n_slots:
                raise ValueError(f"{n_slots} {modality} placeholder positions but {tokens.shape[0]} "
                                 f"{modality} tokens")
            projector = self.projector_for(modality)
            projected = projector(tokens.to(projector.weight.dtype)).to(embeds.dtype)
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), projected)
        return embeds

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                video: torch.Tensor | None = None, audio: torch.Tensor | None = None) -> AnswerLoss:
        """Teacher-forced answer loss: the negative log-likelihood of every labelled token
        (`labels != IGNORE`) given everything before it, per sample and in total.

        Only the positions whose next token is labelled get logits (`logits_to_keep`, where the
        LLM takes it): the answer is a few tokens of a prompt hundreds long, and the output layer
        over a large vocabulary at every prompt position would be a fifth of the work for nothing.
        `loss` is the token-weighted mean, as Hugging Face's causal-LM loss."""
        embeds = self.splice(input_ids, video, audio)
        targets = labels[:, 1:]
        positions = (targets != IGNORE).any(0).nonzero().flatten()
        if self._keeps_logits():
            out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False,
                           logits_to_keep=positions)
            logits = out.logits
        else:
            logits = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False).logits[:, positions]
        kept = targets[:, positions]
        nll = nn.functional.cross_entropy(logits.float().transpose(1, 2), kept, ignore_index=IGNORE,
                                          reduction="none").sum(1)
        n_tokens = (kept != IGNORE).sum(1)
        return AnswerLoss(loss=nll.sum() / n_tokens.sum().clamp(min=1), nll=nll, n_tokens=n_tokens)

    def _keeps_logits(self) -> bool:
        """Whether the LLM's forward takes `logits_to_keep` (most transformers causal LMs do)."""
        if not hasattr(self, "_logits_to_keep"):
            self._logits_to_keep = "logits_to_keep" in inspect.signature(self.llm.forward).parameters
        return self._logits_to_keep

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 video: torch.Tensor | None = None, audio: torch.Tensor | None = None,
                 **generate_kwargs: Any) -> torch.Tensor:
        """New token ids only (B, ≤ max_new_tokens), generated from the spliced `inputs_embeds`.
        Batches must be left-padded."""
        embeds = self.splice(input_ids, video, audio)
        return self.llm.generate(inputs_embeds=embeds, attention_mask=attention_mask, **generate_kwargs)
