"""Which inputs a FAME-Net experiment shows the model: one typed reading of an `experiments.<name>`
entry, shared by the config checks, the workflow's input functions, FAME-Net and the tables.

An experiment's settings travel as the user wrote them: the fame rules receive the entry and
record it in their artifacts and run cards, where `audio`, which the paper's experiments leave
out, is absent. Its default therefore lives here, not as a `default:` in
workflow/schemas/config/experiments.schema.yaml: config validation fills schema defaults in
(`ecem.config`), and filling this one would change what every existing experiment's rules
receive and record, and so rerun them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: How each setting is read from an experiment entry (or its record in an artifact).
_READERS: dict[str, Callable[[Any], Any]] = {
    "video": bool, "text": bool, "face": bool, "context_turns": int, "text_source": str, "audio": bool,
}


@dataclass(frozen=True)
class Modalities:
    """Which inputs an experiment shows the model."""

    video: bool
    text: bool
    face: bool
    context_turns: int = 0
    text_source: str = "meld"
    audio: bool = False

    @classmethod
    def from_experiment(cls, experiment: Mapping[str, Any]) -> Modalities:
        """An `experiments.<name>` entry (or the copy an artifact recorded); settings it leaves
        out take the defaults above, keys that are not modalities (`description`) are ignored."""
        return cls(**{key: read(experiment[key]) for key, read in _READERS.items() if key in experiment})

    @property
    def reads_asr(self) -> bool:
        """Whether the utterance text may come from the transcripts (text_source other than meld)."""
        return self.text and self.text_source != "meld"
