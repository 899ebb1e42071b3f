"""ECEM annotations: parse the LLaVA-conversation JSON and resolve each sample to a MELD utterance.

An annotation names a clip (`480_5.mp4` = MELD train dialogue 480, utterance 5; `t_254_15.mp4` =
MELD test) and quotes the target utterance as `<Speaker: text>` in its prompt. The named
utterance id is not always MELD's, so each annotation is resolved by speaker + text similarity
within its dialogue: `exact` when speaker and normalised text agree at the named id; otherwise
the best-scoring utterance (`fuzzy` at the named id, `shifted` at another id; ties go to the id
nearest the named one). Below `min_score` the annotation is quarantined, as are malformed
records, neutral targets (when dropped) and duplicates; nothing is silently lost.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ecem.meld import EMOTIONS, SPLITS, UTTERANCE_KEYS
from ecem.textfile import read_utf8
from ecem.text import normalize_text, text_similarity

_VIDEO = re.compile(r"^(?P<test>t_)?(?P<dia>\d+)_(?P<utt>\d+)\.mp4$")
_PROMPT = re.compile(
    r"emotion of this statement is\s+(?P<emotion>[A-Za-z]+)\s*<\s*(?P<speaker>[^:<>]+?)\s*:\s*"
    r"(?P<text>.*)>\s*$",
    re.DOTALL,
)

RESOLVED_COLUMNS = [
    "sample_id", *UTTERANCE_KEYS, "annotation_id", "annotation_ref",
    "named_utterance_id", "speaker", "emotion", "meld_emotion", "utterance_text",
    "annotation_text", "cause", "match", "match_score",
]
# `source`: `ecem` (an annotation record) or `meld` (a MELD CSV row that cannot be used).
QUARANTINE_COLUMNS = ["source", "annotation_id", "annotation_ref", "reason", "detail"]


def sample_id(meld_split: str, dialogue_id: int, utterance_id: int) -> str:
    """Stable sample key, e.g. `train/dia480_utt5`."""
    return f"{meld_split}/dia{int(dialogue_id)}_utt{int(utterance_id)}"


def parse_video_name(name: str) -> tuple[str, int, int]:
    """`480_5.mp4` → ('train', 480, 5); `t_254_15.mp4` → ('test', 254, 15).

    A folder before the name (`videos/3_0.mp4`) is ignored unless it names a MELD split other
    than the name's own (`dev/0_1.mp4`, `test_splits/0_1.mp4`): reading that as MELD train's clip
    would resolve it to the wrong utterance, so it is a ValueError.
    """
    path = Path(str(name))
    m = _VIDEO.match(path.name)
    if not m:
        raise ValueError(f"video name {name!r} is not D_U.mp4 or t_D_U.mp4")
    split = "test" if m["test"] else "train"
    for folder in path.parent.parts:
        words = re.split(r"[^a-z]+", folder.lower())  # dev_splits_complete → dev, splits, complete
        named = next((s for s in SPLITS if s in words), split)
        if named != split:
            raise ValueError(f"video name {name!r}: folder {folder!r} names MELD's {named} split, but "
                             f"{path.name} names a {split} clip (ECEM names only train, and test as t_D_U)")
    return split, int(m["dia"]), int(m["utt"])


def _turn_value(turns: list[Any], speaker: str) -> str | None:
    """The text of the first turn `from` `speaker`; ValueError when a turn is not a dict of strings."""
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ValueError(f"conversations[{i}] is {type(turn).__name__}, not an object")
        if turn.get("from") == speaker:
            value = turn.get("value")
            if not isinstance(value, str):
                raise ValueError(f"conversations[{i}].value is {type(value).__name__}, not a string")
            return value
    return None


def parse_record(record: Any) -> dict[str, Any]:
    """One ECEM record → flat fields. Raises ValueError saying what is malformed."""
    if not isinstance(record, dict) or "video" not in record or "conversations" not in record:
        raise ValueError("record is not an object with 'video' and 'conversations'")
    split, dia, utt = parse_video_name(record["video"])
    turns = record["conversations"]
    if not isinstance(turns, list):
        raise ValueError(f"'conversations' is {type(turns).__name__}, not a list of turns")
    human, answer = _turn_value(turns, "human"), _turn_value(turns, "gpt")
    if human is None or answer is None:
        raise ValueError("conversation lacks a human prompt or a gpt answer")
    m = _PROMPT.search(human)
    if not m:
        raise ValueError(f"prompt does not name an emotion and <Speaker: text>: {human[:80]!r}")
    return {
        "annotation_id": record.get("id"), "annotation_ref": str(record["video"]), "meld_split": split,
        "dialogue_id": dia, "named_utterance_id": utt, "emotion": m["emotion"].lower(),
        "speaker": m["speaker"].strip(), "annotation_text": m["text"].strip(),
        "cause": answer.strip(),
    }


class AnnotationFileError(ValueError):
    """The ECEM JSON cannot be used at all; the message names the file and the problem."""


def load_annotations(path: str | Path) -> list[Any]:
    """Read the ECEM JSON (a non-empty list of records); AnnotationFileError says what is wrong."""
    text = read_utf8(path, AnnotationFileError, "the ECEM JSON is UTF-8")
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column "
                                  f"{exc.colno}); is the file complete?") from None
    if not isinstance(records, list):
        raise AnnotationFileError(f"{path}: expected a JSON list of annotation records, got "
                                  f"{type(records).__name__}")
    if not records:
        raise AnnotationFileError(f"{path}: no annotations (an empty list)")
    return records


def _best_match(ann: dict[str, Any], candidates: pd.DataFrame, speaker_weight: float) -> tuple[Any, str, float]:
    named = ann["named_utterance_id"]
    speaker = ann["speaker"].casefold()
    at_named = candidates[candidates["utterance_id"] == named]
    if len(at_named):
        row = at_named.iloc[0]
        if row["speaker"].casefold() == speaker and normalize_text(row["text"]) == normalize_text(
            ann["annotation_text"]
        ):
            return row, "exact", 1.0
    text_scores = [text_similarity(t, ann["annotation_text"]) for t in candidates["text"]]
    speaker_scores = [float(s.casefold() == speaker) for s in candidates["speaker"]]
    scores = [(1 - speaker_weight) * t + speaker_weight * s for t, s in zip(text_scores, speaker_scores)]
    best = max(scores)
    tied = [i for i, s in enumerate(scores) if best - s <= 1e-9]
    pick = min(tied, key=lambda i: (abs(int(candidates["utterance_id"].iloc[i]) - named),
                                    int(candidates["utterance_id"].iloc[i])))
    row = candidates.iloc[pick]
    return row, ("fuzzy" if int(row["utterance_id"]) == named else "shifted"), float(best)


def resolve_annotations(
    records: list[dict[str, Any]], meld: pd.DataFrame, min_score: float, speaker_weight: float,
    drop_neutral: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Resolve ECEM records against MELD (`ecem.meld.read_meld`).

    Returns (resolved samples, quarantined annotations with a reason each).
    """
    by_dialogue = {key: grp for key, grp in meld.groupby(["meld_split", "dialogue_id"], sort=False)}
    resolved: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    seen: dict[str, Any] = {}

    def reject(record: dict[str, Any], reason: str, detail: str) -> None:
        ident = record.get("id", record.get("annotation_id"))
        quarantined.append({"source": "ecem", "annotation_id": None if ident is None else str(ident),
                            "annotation_ref": str(record.get("video", record.get("annotation_ref"))),
                            "reason": reason, "detail": detail})

    for record in records:
        try:
            ann = parse_record(record)
        except ValueError as exc:
            reject(record if isinstance(record, dict) else {}, "malformed", str(exc))
            continue
        if ann["emotion"] not in EMOTIONS:
            reject(record, "unknown_emotion",
                   f"emotion {ann['emotion']!r} is not one of MELD's {', '.join(EMOTIONS)}")
            continue
        if drop_neutral and ann["emotion"] == "neutral":
            reject(record, "neutral", "neutral target dropped (dataset.drop_neutral)")
            continue
        candidates = by_dialogue.get((ann["meld_split"], ann["dialogue_id"]))
        if candidates is None:
            reject(record, "no_dialogue",
                   f"MELD {ann['meld_split']} has no dialogue {ann['dialogue_id']}")
            continue
        row, match, score = _best_match(ann, candidates, speaker_weight)
        if score < min_score:
            reject(record, "unmatched",
                   f"best match dia{ann['dialogue_id']}_utt{int(row['utterance_id'])} "
                   f"({row['speaker']}: {row['text']!r}) scores {score:.3f} < {min_score}")
            continue
        sid = sample_id(ann["meld_split"], ann["dialogue_id"], int(row["utterance_id"]))
        if sid in seen:
            reject(record, "duplicate", f"resolves to {sid}, already taken by annotation {seen[sid]}")
            continue
        seen[sid] = ann["annotation_id"]
        resolved.append({
            **ann, "sample_id": sid, "utterance_id": int(row["utterance_id"]),
            "meld_emotion": row["emotion"], "utterance_text": row["text"],
            "speaker": row["speaker"], "match": match, "match_score": round(score, 6),
        })
    res = pd.DataFrame(resolved, columns=RESOLVED_COLUMNS)
    res = res.sort_values(UTTERANCE_KEYS, ignore_index=True)
    return res, pd.DataFrame(quarantined, columns=QUARANTINE_COLUMNS)
