"""THE one place FAME-Net prompts are built.

A prompt follows the paper: ``USER: <instruction> <video tokens> <facial emotion> ASSISTANT:``,
where the instruction names the target emotion and, when the experiment uses text, carries
``Q_t`` — the target utterance with its speaker (optionally preceded by earlier dialogue turns);
the video tokens are one placeholder token that the model expands to the clip's projected video
tokens; ``E_cls`` is the facial emotion from the face stage. Beyond the paper, an experiment may
also hear the prefix clip (``audio: true``): an audio placeholder after the video one, expanded to
the clip's A projected speech-encoder tokens (a sample without audio gets none; it is counted).
The answer is the cause sentence.
This module builds the user message (everything between ``USER:`` and ``ASSISTANT:``); how it
reaches the LLM — the paper's plain ``USER:/ASSISTANT:`` text or the tokenizer's chat template —
is `fame.prompt.style`, applied at tokenisation (:class:`ecem.chat.PromptFormat`).
Which modalities appear is decided per experiment (`experiments:` in the config, read as
:class:`ecem.modalities.Modalities`), so the paper's ablations (V, V+E, V+T, V+T+E) and the
text-source comparison are config, not code.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ecem.modalities import Modalities

log = logging.getLogger(__name__)


def build_prompt(sample: Mapping[str, Any], modalities: Modalities, prompt_cfg: Mapping[str, Any]) -> str:
    """The user message of one sample, with the video placeholder.

    `sample` needs `emotion`, and per modality: `speaker`, `text` and `context` (list of
    `(speaker, text)` turns before the target) for text; `face_emotion` (or None) for face;
    `has_audio` for audio (False: no audio placeholder).
    """
    parts = [prompt_cfg["instruction"].format(emotion=sample["emotion"])]
    if modalities.text:
        n_turns = modalities.context_turns
        turns = list(sample.get("context") or [])[-n_turns:] if n_turns else []
        if turns:
            rendered = " ".join(prompt_cfg["turn"].format(speaker=s, text=t) for s, t in turns)
            parts.append(prompt_cfg["context"].format(turns=rendered))
        parts.append(prompt_cfg["utterance"].format(speaker=sample["speaker"], text=sample["text"]))
    if modalities.video:
        parts.append(prompt_cfg["video_placeholder"])
    if modalities.audio and sample.get("has_audio"):
        parts.append(prompt_cfg["audio_placeholder"])
    if modalities.face:
        face = sample.get("face_emotion")
        if face is None or (isinstance(face, float) and pd.isna(face)) or face == "":
            face = prompt_cfg["face_unknown"]
        parts.append(prompt_cfg["face"].format(face_emotion=face))
    return " ".join(parts)


#: examples.parquet: one row per usable sample; `face_emotion`, `text`, `context` (JSON list of
#: [speaker, text] turns) and `has_audio` are the prompt's fields, so `sample_fields` + `build_prompt`
#: rebuild it (the modality-reliance check swaps one field between samples).
EXAMPLE_COLUMNS = ["sample_id", "split", "emotion", "speaker", "prompt", "reference", "face_emotion", "text",
                   "context", "has_audio"]


def sample_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """An examples.parquet row as the `sample` that `build_prompt` takes (its prompt's fields)."""
    face = row.get("face_emotion")
    return {"emotion": row["emotion"], "speaker": row["speaker"], "text": row.get("text"),
            "context": [tuple(turn) for turn in json.loads(row.get("context") or "[]")],
            "face_emotion": None if face is None or (isinstance(face, float) and pd.isna(face)) else face,
            "has_audio": bool(row.get("has_audio"))}


def _clean_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value).strip()


def _usable_samples(annotations: pd.DataFrame, clips: pd.DataFrame, modalities: Modalities,
                    feature_ids: set[str] | None) -> tuple[pd.DataFrame, dict[str, int]]:
    """The samples whose clip rendered and (with video, when `feature_ids` is given) that have
    video tokens, and how many each test left out."""
    ok_ids = set(clips.loc[clips["status"] == "ok", "sample_id"])
    excluded: dict[str, int] = {}
    keep = annotations["sample_id"].isin(ok_ids)
    excluded["clip_not_ok"] = int((~keep).sum())
    samples = annotations[keep]
    if modalities.video and feature_ids is not None:
        has = samples["sample_id"].isin(feature_ids)
        excluded["no_clip_features"] = int((~has).sum())
        samples = samples[has]
    return samples, excluded


UtteranceKey = tuple[str, int, int]  # (meld_split, dialogue_id, utterance_id)


@dataclasses.dataclass(frozen=True)
class _PromptSources:
    """The other tables a sample's prompt reads, indexed once: resolved texts, speakers, faces and
    the samples with audio."""

    text_of: dict[UtteranceKey, str]
    turns_of: dict[tuple[str, int], list[int]]  # (meld_split, dialogue_id) → utterances with a text
    speaker_of: dict[UtteranceKey, str]
    face_of: dict[str, Any]
    audio_ids: set[str] | None

    @classmethod
    def index(cls, utterances: pd.DataFrame, texts: pd.DataFrame | None, faces: pd.DataFrame | None,
              modalities: Modalities, audio_ids: set[str] | None) -> _PromptSources:
        text_of: dict[UtteranceKey, str] = {}
        if modalities.text:
            if texts is None:
                raise ValueError("the experiment uses text but no resolved texts were given")
            text_of = {(r.meld_split, int(r.dialogue_id), int(r.utterance_id)): _clean_text(r.text)
                       for r in texts.itertuples(index=False)}
        turns_of: dict[tuple[str, int], list[int]] = {}
        for split, dialogue, utterance in sorted(text_of):
            turns_of.setdefault((split, dialogue), []).append(utterance)
        speaker_of = {(r.meld_split, int(r.dialogue_id), int(r.utterance_id)): str(r.speaker)
                      for r in utterances.itertuples(index=False)}
        face_of: dict[str, Any] = {}
        if modalities.face and faces is not None:
            face_of = dict(zip(faces["sample_id"], faces["face_emotion"], strict=True))
        return cls(text_of, turns_of, speaker_of, face_of, audio_ids)

    def context(self, key: UtteranceKey) -> list[tuple[str, str]]:
        """The `(speaker, text)` turns of `key`'s dialogue that have a text and come before it, in
        utterance order (a speaker not among the utterances is "")."""
        return [(self.speaker_of.get((key[0], key[1], u), ""), self.text_of[(key[0], key[1], u)])
                for u in self.turns_of.get(key[:2], []) if u < key[2]]

    def sample(self, s: Any, modalities: Modalities) -> dict[str, Any]:
        """The `sample` that `build_prompt` takes for annotation row `s`."""
        key = (s.meld_split, int(s.dialogue_id), int(s.utterance_id))
        sample: dict[str, Any] = {"emotion": s.emotion, "speaker": s.speaker}
        if modalities.text:
            sample["text"] = self.text_of.get(key, "")
            sample["context"] = self.context(key) if modalities.context_turns else []
        if modalities.face:
            sample["face_emotion"] = self.face_of.get(s.sample_id)
        if modalities.audio:
            sample["has_audio"] = self.audio_ids is not None and s.sample_id in self.audio_ids
        return sample


def _example_row(s: Any, sample: dict[str, Any], modalities: Modalities,
                 prompt_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The EXAMPLE_COLUMNS row of annotation row `s`, its prompt built from `sample`."""
    return {
        "sample_id": s.sample_id, "split": s.split, "emotion": s.emotion, "speaker": s.speaker,
        "prompt": build_prompt(sample, modalities, prompt_cfg), "reference": _clean_text(s.cause),
        "face_emotion": sample.get("face_emotion"), "text": sample.get("text"),
        "context": json.dumps(sample.get("context") or []), "has_audio": bool(sample.get("has_audio")),
    }


def _summary(n_samples: int, out: pd.DataFrame, excluded: dict[str, int], modalities: Modalities,
             prompt_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Counts of the examples: usable of all, excluded by reason, by split, and (with audio) how
    many prompts carry no audio placeholder."""
    summary = {"n_samples": n_samples, "n_examples": int(len(out)), "excluded": excluded,
               "by_split": out["split"].value_counts().sort_index().to_dict()}
    if modalities.audio:
        has_audio = out["prompt"].str.contains(prompt_cfg["audio_placeholder"], regex=False)
        summary["no_audio"] = int((~has_audio).sum())
    return summary


def build_examples(annotations: pd.DataFrame, clips: pd.DataFrame, utterances: pd.DataFrame,
                   texts: pd.DataFrame | None, faces: pd.DataFrame | None,
                   modalities: Modalities, prompt_cfg: Mapping[str, Any],
                   feature_ids: set[str] | None = None,
                   audio_ids: set[str] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Samples → one row per usable sample: `sample_id, split, emotion, speaker, prompt, reference`.

    A sample is usable when its clip rendered (`clips.status == ok`) and, when the experiment
    uses video and `feature_ids` is given, when it has video tokens. Everything left out is
    counted in the returned summary, never dropped silently. With audio, samples outside
    `audio_ids` (the audio stage's `no_audio`) stay in, without audio tokens, and are counted.
    """
    samples, excluded = _usable_samples(annotations, clips, modalities, feature_ids)
    sources = _PromptSources.index(utterances, texts, faces, modalities, audio_ids)
    rows = [_example_row(s, sources.sample(s, modalities), modalities, prompt_cfg)
            for s in samples.itertuples(index=False)]
    out = pd.DataFrame(rows, columns=EXAMPLE_COLUMNS)
    summary = _summary(int(len(annotations)), out, excluded, modalities, prompt_cfg)
    log.info("examples: %d usable of %d samples; excluded %s; by split %s", len(out), len(annotations),
             excluded, summary["by_split"])
    return out.sort_values("sample_id", ignore_index=True), summary
