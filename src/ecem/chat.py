"""How a prompt reaches a causal LM: as plain text or through the tokenizer's chat template.

Vicuna/LLaVA (the paper's LLM) reads plain ``USER: … ASSISTANT:`` text; instruction-tuned models
such as SmolLM2 answer sensibly only through their own chat template (with the plain format
SmolLM2 produced gibberish). :class:`PromptFormat` renders one user message either way and, for
training, splits the target into the tokens the loss covers: the answer and the end-of-turn token
that ends it — nothing the template adds after that (e.g. ChatML's trailing newline). FAME-Net
(``fame.prompt``) and the ``zero_shot`` baseline both use it, so the two see prompts alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

STYLES = ("plain", "chat")


@dataclass(frozen=True)
class PromptFormat:
    """`plain`: ``{user} {content} {assistant}``, the tokenizer's special tokens added (LLaMA's
    BOS). `chat`: the tokenizer's chat template with an optional system message."""

    style: str = "plain"
    user: str = "USER:"
    assistant: str = "ASSISTANT:"
    system: str | None = None

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown prompt style {self.style!r} ({' | '.join(STYLES)})")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> PromptFormat:
        """`fame.prompt` (or the copy an artifact recorded): its style, user, assistant and system;
        one it leaves out takes the default above."""
        return cls(**{f.name: cfg[f.name] for f in fields(cls) if f.name in cfg})

    def _messages(self, content: str) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return [*messages, {"role": "user", "content": content}]

    def _check_template(self, tokenizer: Any) -> None:
        if self.style == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"prompt style 'chat' but the tokenizer of "
                             f"{getattr(tokenizer, 'name_or_path', '?')!r} has no chat template; "
                             f"use style: plain")

    def prompt_ids(self, tokenizer: Any, content: str) -> list[int]:
        """Token ids of everything before the answer (generation starts after them)."""
        self._check_template(tokenizer)
        if self.style == "plain":
            text = f"{self.user} {content} {self.assistant}".strip()
            return list(tokenizer(text, add_special_tokens=True)["input_ids"])
        text = tokenizer.apply_chat_template(self._messages(content), tokenize=False,
                                             add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def answer_ids(self, tokenizer: Any, content: str, answer: str) -> list[int]:
        """Token ids the loss covers: the answer, then the end-of-sequence/end-of-turn token.

        `chat`: the template is rendered with and without the assistant turn; what the full
        rendering adds is tokenised and cut after its first EOS (the end-of-turn token of chat
        models; appended when the template writes none)."""
        eos = tokenizer.eos_token_id
        if self.style == "plain":
            return list(tokenizer(" " + answer, add_special_tokens=False)["input_ids"]) + [eos]
        self._check_template(tokenizer)
        messages = self._messages(content)
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}],
                                             tokenize=False)
        if not full.startswith(head):
            raise ValueError("the chat template renders the assistant turn differently from the "
                             "generation prompt; cannot separate the answer for the loss")
        ids = list(tokenizer(full[len(head):], add_special_tokens=False)["input_ids"])
        return ids[: ids.index(eos) + 1] if eos in ids else [*ids, eos]
