"""A MELD-shaped demo script of any size, for rehearsing a full-scale run on cheap media.

`rehearsal_script(samples, seed)` returns a script in the demo script's format (see
`demo_script.yaml`) whose dialogues are drawn to match MELD's published statistics, so the
pipeline's costs scale as they will on MELD, and whose ECEM-format annotations number `samples`.
The media are then made by the demo builder (eSpeak NG speech, photographed faces) at whatever
size `demo.width/height` says.

The statistics (MELD, Poria et al., ACL 2019; ECEM, the FAME-Net paper):
- 1,433 dialogues, 13,708 utterances: 9.6 utterances per dialogue on average, from 1 to 24 in
  train; dialogues in train / dev / test: 1,039 / 114 / 280.
- 8.0 words per utterance on average, 3.59 s per clip (eSpeak at the demo's 165 words/min gives
  8 words ≈ 2.9 s, plus the clip's silent padding).
- Emotions: neutral 47.0%, joy 16.8%, surprise 11.9%, anger 11.7%, sadness 7.3%, disgust 2.6%,
  fear 2.6%.
- Speakers: the six main characters say ~76% of the lines (nearly equally), others the rest.
- ECEM: 5,837 samples from MELD's 7,272 non-neutral train + test utterances (≈ 80%); dev has none.
- Clip overlaps: consecutive MELD clips often repeat a few frames (here: 60% of clips, 1–8
  frames, within the planted silent tail).
Text and causes are generated from a small vocabulary (the words carry no meaning); a cause names
the speaker, the emotion and words of the previous line, so it is learnable from the prompt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAIN_SPEAKERS = ["Joey", "Ross", "Rachel", "Monica", "Chandler", "Phoebe"]
OTHER_SPEAKERS = ["Gunther", "Janice", "Mike", "Carol", "Emily", "Richard", "Mona", "Paolo"]
MAIN_SHARE = 0.76
EMOTIONS = {"neutral": 0.470, "joy": 0.168, "surprise": 0.119, "anger": 0.117, "sadness": 0.073,
            "disgust": 0.026, "fear": 0.026}
ADJECTIVE = {"joy": "happy", "surprise": "surprised", "anger": "angry", "sadness": "sad",
             "disgust": "disgusted", "fear": "scared"}
SPLITS = {"train": 1039, "dev": 114, "test": 280}  # dialogues per MELD split
MEAN_UTTERANCES, MAX_UTTERANCES = 9.6, 24
MEAN_WORDS, MAX_WORDS = 8.0, 40
ANNOTATED_SHARE = 5837 / 7272  # non-neutral train + test utterances that ECEM annotates
OVERLAP_SHARE, MAX_OVERLAP = 0.6, 8
WORDS = (
    "okay well so yeah really just know think right now come good time going want look thing "
    "guess mean never little tell today night dinner coffee apartment door phone party date job "
    "money chair fridge pizza movie baby wedding sister brother friend kitchen couch game ticket "
    "present letter dress shoes museum dinosaur duck chick turkey sandwich lasagna guitar song "
    "play audition tomorrow yesterday again maybe always sorry please great terrible funny weird "
    "crazy huge tiny late early there here everybody somebody nobody would could should cannot "
    "actually totally probably honestly seriously exactly"
).split()


def _count(rng: np.random.Generator, mean: float, low: int, high: int) -> int:
    """A count ≥ `low` with mean ≈ `mean`, over-dispersed like MELD's (negative binomial, k = 2)."""
    extra = mean - low
    return int(min(high, low + rng.negative_binomial(2, 2 / (2 + extra))))


def _speaker(rng: np.random.Generator, cast: list[str]) -> str:
    return str(rng.choice(cast)) if rng.random() < MAIN_SHARE else str(rng.choice(OTHER_SPEAKERS))


def _dialogue(rng: np.random.Generator, split: str, dialogue_id: int) -> dict[str, Any]:
    cast = list(rng.choice(MAIN_SPEAKERS, size=int(rng.integers(2, 4)), replace=False))
    n = _count(rng, MEAN_UTTERANCES, 1, MAX_UTTERANCES)
    emotions, probs = list(EMOTIONS), np.array(list(EMOTIONS.values()))
    utterances = []
    for u in range(n):
        words = rng.choice(WORDS, size=_count(rng, MEAN_WORDS, 1, MAX_WORDS))
        utt: dict[str, Any] = {"speaker": _speaker(rng, cast),
                               "text": " ".join(words).capitalize() + ".",
                               "emotion": str(rng.choice(emotions, p=probs / probs.sum()))}
        if u and rng.random() < OVERLAP_SHARE:
            utt["overlap"] = int(rng.integers(1, MAX_OVERLAP + 1))
        faces = rng.random()
        if faces < 0.05:
            utt["faces"] = 0
        elif faces > 0.8:
            utt["faces"] = 2
        utterances.append(utt)
    return {"split": split, "dialogue_id": dialogue_id, "season": int(rng.integers(1, 11)),
            "episode": int(rng.integers(1, 25)), "utterances": utterances}


def _cause(utt: dict[str, Any], previous: dict[str, Any] | None) -> str:
    adjective = ADJECTIVE[utt["emotion"]]
    if previous is None:
        return f"{utt['speaker']} is {adjective} because of what {utt['speaker']} has just seen."
    said = " ".join(previous["text"].rstrip(".").lower().split()[:6])
    return f"{utt['speaker']} is {adjective} because {previous['speaker']} said {said}."


def rehearsal_script(samples: int, seed: int = 0) -> dict[str, Any]:
    """Dialogues and exactly `samples` annotations, MELD-shaped (see the module docstring)."""
    if samples < 1:
        raise ValueError(f"rehearsal samples must be at least 1, got {samples}")
    rng = np.random.default_rng(seed)
    names, shares = list(SPLITS), np.array(list(SPLITS.values()), dtype=float)
    next_id = dict.fromkeys(names, 0)
    dialogues: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    while len(annotations) < samples:
        split = str(rng.choice(names, p=shares / shares.sum()))
        dialogue = _dialogue(rng, split, next_id[split])
        next_id[split] += 1
        dialogues.append(dialogue)
        if split == "dev":  # ECEM annotates MELD train and test only
            continue
        prefix = "t_" if split == "test" else ""
        for u, utt in enumerate(dialogue["utterances"]):
            if utt["emotion"] == "neutral" or rng.random() >= ANNOTATED_SHARE or len(annotations) >= samples:
                continue
            previous = dialogue["utterances"][u - 1] if u else None
            annotations.append({"video": f"{prefix}{dialogue['dialogue_id']}_{u}.mp4", "speaker": utt["speaker"],
                                "emotion": utt["emotion"], "text": utt["text"], "cause": _cause(utt, previous)})
    return {"dialogues": dialogues, "annotations": annotations}


def script_summary(script: dict[str, Any]) -> dict[str, Any]:
    """Counts to compare with MELD's: dialogues per split, utterances, words, emotions."""
    utts = [u for d in script["dialogues"] for u in d["utterances"]]
    splits: dict[str, int] = {}
    for d in script["dialogues"]:
        splits[d["split"]] = splits.get(d["split"], 0) + 1
    emotions: dict[str, int] = {}
    for u in utts:
        emotions[u["emotion"]] = emotions.get(u["emotion"], 0) + 1
    return {"dialogues": len(script["dialogues"]), "dialogues_per_split": splits, "utterances": len(utts),
            "utterances_per_dialogue": len(utts) / max(len(script["dialogues"]), 1),
            "words_per_utterance": float(np.mean([len(u["text"].split()) for u in utts])) if utts else 0.0,
            "emotions": {k: v / len(utts) for k, v in sorted(emotions.items())} if utts else {},
            "annotations": len(script["annotations"])}
