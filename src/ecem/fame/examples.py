"""Rule fame_examples: samples, features and texts → one prompt per sample (no model needed, so
this module imports no torch: the job takes a second, not the LLM stack's start-up)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow.parquet as pq

from ecem.artifacts import read_table, write_table
from ecem.fame.prompt import build_examples
from ecem.meld import UTTERANCE_KEYS
from ecem.modalities import Modalities

STAGE = "fame"


def feature_sample_ids(features_path: str) -> set[str]:
    """Sample ids present in a token file (video or audio; its `sample_id` column, tokens not read)."""
    return set(pq.read_table(features_path, columns=["sample_id"]).column("sample_id").to_pylist())


def run_examples(experiment: str, exp_cfg: Mapping[str, Any], prompt_cfg: Mapping[str, Any],
                 text_policy: Mapping[str, Any] | None, annotations_path: str, clips_path: str,
                 utterances_path: str, transcripts_path: str | None, faces_path: str | None,
                 features_path: str | None, out: str, audio_path: str | None = None) -> None:
    """Samples + features + texts → `runs/{experiment}/examples.parquet` (one prompt per sample)."""
    modalities = Modalities.from_experiment(exp_cfg)
    annotations, clips = read_table(annotations_path), read_table(clips_path)
    utterances = read_table(utterances_path)
    texts = None
    if modalities.text:
        from ecem.text_policy import resolve_texts

        transcripts = read_table(transcripts_path) if transcripts_path else None
        texts = resolve_texts(utterances, transcripts, text_policy or {}, mode=modalities.text_source)
    faces = read_table(faces_path, columns=["sample_id", "face_emotion"]) if modalities.face else None
    feature_ids = feature_sample_ids(features_path) if modalities.video and features_path else None
    audio_ids = feature_sample_ids(audio_path) if modalities.audio and audio_path else None
    if modalities.audio and audio_ids is None:
        raise ValueError(f"experiment {experiment} hears audio but no audio features were given")
    examples, summary = build_examples(annotations, clips, utterances, texts, faces, modalities, prompt_cfg,
                                       feature_ids, audio_ids)
    if texts is not None:
        used = texts.merge(annotations[UTTERANCE_KEYS].drop_duplicates())
        summary["text_sources"] = used["text_source"].value_counts().to_dict()
    write_table(examples, out, STAGE, {"experiment": experiment, "modalities": dict(exp_cfg),
                                       "prompt": dict(prompt_cfg), "text_policy": text_policy,
                                       "summary": summary})
