"""A planted-cue corpus: the key words of every cause can be recovered from one input only.

Does a FAME-Net run read its video and audio, or does it answer from the text? On this corpus
only a model that reads them can name the cause:

- video cue: each dialogue takes place before one of `OBJECTS`' photographs (scikit-image's),
  and every cause names it ("… because of the rocket …"); no text, no sound says which;
- audio cue: a non-speech sound (`ecem.corpus.sound`) plays under the whole dialogue, and every
  cause names it ("… and the siren."); nothing visible or written says which.

The two are drawn independently per dialogue, so a model that confuses them is wrong half the
time. Utterances are random words (`ecem.corpus.rehearsal.WORDS`, which names no cue), speakers
are the main cast, every utterance is annotated with a non-neutral emotion, and dialogues are
short (1–3 utterances), so the corpus has many dialogues and the dialogue-grouped split many
cue combinations. `truth.json` records each annotation's planted cues.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ecem.corpus.rehearsal import ADJECTIVE, MAIN_SPEAKERS, OVERLAP_SHARE, WORDS
from ecem.corpus.sound import SOUNDS

#: Background photograph (scikit-image) → the object a cause names. Visually distinct, no faces.
OBJECTS = {"rocket": "rocket", "chelsea": "cat", "coins": "coins", "moon": "moon",
           "hubble_deep_field": "galaxy", "clock": "clock", "brick": "bricks", "colorwheel": "rainbow"}
CUES = ("video", "audio")
MAX_UTTERANCES = 3


def cue_words() -> dict[str, list[str]]:
    """The words that name each kind of cue in causes."""
    return {"video": list(OBJECTS.values()), "audio": list(SOUNDS)}


def cause(speaker: str, emotion: str, planted: dict[str, str]) -> str:
    """The cause sentence naming the planted cues (the object, then the sound)."""
    named = [f"the {planted[k]}" for k in ("object", "sound") if k in planted]
    return f"{speaker} is {ADJECTIVE[emotion]} because of {' and '.join(named)}."


def grounding_script(samples: int, seed: int = 0, cues: tuple[str, ...] = CUES) -> dict[str, Any]:
    """Dialogues and exactly `samples` annotations whose causes name the planted `cues`."""
    unknown = sorted(set(cues) - set(CUES))
    if unknown or not cues:
        raise ValueError(f"planted cues must be some of {list(CUES)}, got {list(cues)}")
    rng = np.random.default_rng(seed)
    emotions = list(ADJECTIVE)
    dialogues: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    while len(annotations) < samples:
        planted: dict[str, str] = {}
        background = str(rng.choice(list(OBJECTS)))
        noise = str(rng.choice(list(SOUNDS)))
        if "video" in cues:
            planted["object"] = OBJECTS[background]
        if "audio" in cues:
            planted["sound"] = noise
        cast = list(rng.choice(MAIN_SPEAKERS, size=2, replace=False))
        n = min(int(rng.integers(1, MAX_UTTERANCES + 1)), samples - len(annotations))
        dialogue_id = len(dialogues)
        utterances = []
        for u in range(n):
            words = rng.choice(WORDS, size=int(rng.integers(5, 11)))
            utt: dict[str, Any] = {"speaker": str(cast[u % 2]), "text": " ".join(words).capitalize() + ".",
                                   "emotion": str(rng.choice(emotions)), "background": background}
            if "audio" in cues:
                utt["sound"] = noise
            if u and rng.random() < OVERLAP_SHARE:
                utt["overlap"] = int(rng.integers(1, 5))
            utterances.append(utt)
            annotations.append({"video": f"{dialogue_id}_{u}.mp4", "speaker": utt["speaker"],
                                "emotion": utt["emotion"], "text": utt["text"],
                                "cause": cause(utt["speaker"], utt["emotion"], planted), "planted": planted})
        dialogues.append({"split": "train", "dialogue_id": dialogue_id, "season": 1, "episode": 1,
                          "utterances": utterances})
    return {"dialogues": dialogues, "annotations": annotations}
