"""The offline stand-in LLM: a tiny random `LlamaForCausalLM` with a real BPE tokenizer.

The tokenizer is trained with the `tokenizers` library (byte-level BPE, so any text encodes)
on the corpus' own text; the model is built from a `LlamaConfig` with random weights. Both are
written with `save_pretrained` and later loaded through `from_pretrained`, the same code path a
real checkpoint takes. Its outputs are meaningless: runs on it are labelled random-weight.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from ecem.model_refs import write_model_card

log = logging.getLogger(__name__)

BOS, EOS, UNK, PAD = "<s>", "</s>", "<unk>", "<pad>"


def train_tokenizer(texts: Iterable[str], vocab_size: int, extra_special: Iterable[str] = ()) -> Any:
    """A byte-level BPE tokenizer trained on `texts`, wrapped as a transformers fast tokenizer
    that prepends `<s>` (like LLaMA's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [UNK, BOS, EOS, PAD, *extra_special]
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, tok.token_to_id(BOS))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, unk_token=UNK,
                                   pad_token=PAD, additional_special_tokens=list(extra_special))


def build_tiny_llm(out_dir: str | Path, texts: Iterable[str], cfg: Mapping[str, Any],
                   extra_special: Iterable[str] = ()) -> None:
    """Train the tokenizer, build the random model from `cfg` (LlamaConfig sizes + `seed`), save both."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(texts, int(cfg["vocab_size"]), extra_special)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"],
        max_position_embeddings=cfg["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(int(cfg["seed"]))
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    write_model_card(out_dir, random_weights=True, architecture="LlamaForCausalLM", n_parameters=n_params,
                     vocab_size=len(tokenizer), built_by="ecem.fame.tiny (rule tiny_llm)", config=dict(cfg),
                     note="random weights for offline smoke runs; its text is meaningless")
    log.info("tiny LLM: %d parameters, vocabulary %d → %s", n_params, len(tokenizer), out_dir)


def run_tiny_llm(annotations_path: str, utterances_path: str, fame_cfg: Mapping[str, Any],
                 out_dir: str) -> None:
    """Rule tiny_llm: the tokenizer learns the corpus' utterance text and the `train` split's
    causes (never `val`/`test` causes); byte-level BPE still encodes any other text."""
    from ecem.artifacts import read_table

    annotations = read_table(annotations_path)
    utterances = read_table(utterances_path)
    texts = [str(t) for t in utterances["text"].dropna()]
    texts += [str(t) for t in annotations.loc[annotations["split"] == "train", "cause"].dropna()]
    texts += [f"{r.speaker}: {r.emotion}" for r in annotations.itertuples(index=False)]
    build_tiny_llm(out_dir, texts, fame_cfg["tiny_llm"],
                   extra_special=[fame_cfg["prompt"]["video_placeholder"],
                                  fame_cfg["prompt"]["audio_placeholder"]])
