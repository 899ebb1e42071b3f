"""Entry points of the transcription stage's rules (one function per rule, no Snakemake needed).

- `run_shard`: the utterances of one shard of dialogues → `results/transcribe/shard-{k}.parquet`
  (the WhisperX model and VAD are loaded once per job, and only if the shard has audio).
- `run_gather`: shards → `results/transcripts.parquet`, checked to hold exactly one row per
  utterance of `utterances.parquet`.
- `run_quality`: `results/quality/transcribe.json` (counts, WER vs MELD, and how many utterances
  the configured text policy sends to each source).

Statuses: `ok` (speech transcribed), `no_speech` (the VAD found no speech, or Whisper decoded
every speech region as non-speech), `no_audio` (the dataset stage found no audio stream or
silent audio: ASR is not run, the dataset's reason is carried over), `failed` (the clip is
missing/corrupt in the dataset stage — not transcribed, `dataset_status` keeps the original
status and `status_detail` its reason — or decoding its audio failed here). A fault of the
machine (full disk, I/O error, memory) is no status: it fails the job (:mod:`ecem.faults`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from ecem.artifacts import read_metadata, read_table, write_json, write_table
from ecem.faults import data_fault
from ecem.sharding import dialogue_key, shard_of
from ecem.meld import UTTERANCE_KEYS
from ecem.text_policy import resolve_texts
from ecem.transcribe.wer import wer

log = logging.getLogger(__name__)
STAGE = "transcribe"
STATUSES = ("ok", "no_speech", "no_audio", "failed")
TRANSCRIBABLE = ("ok",)  # dataset statuses whose audio is decoded and transcribed

SEGMENT_TYPE = pa.struct([
    ("start", pa.float64()), ("end", pa.float64()), ("text", pa.string()),
    ("avg_logprob", pa.float64()), ("no_speech_prob", pa.float64()), ("n_tokens", pa.int64()),
    ("kept", pa.bool_())])
WORD_TYPE = pa.struct([("word", pa.string()), ("start", pa.float64()), ("end", pa.float64()),
                       ("score", pa.float64())])
SCHEMA = pa.schema([
    ("meld_split", pa.string()), ("dialogue_id", pa.int64()), ("utterance_id", pa.int64()),
    ("text_meld", pa.string()), ("text_asr", pa.string()),
    ("segments", pa.list_(SEGMENT_TYPE)), ("words", pa.list_(WORD_TYPE)),
    ("avg_logprob", pa.float64()), ("confidence", pa.float64()),
    ("no_speech_prob", pa.float64()), ("n_tokens", pa.int64()), ("wer_vs_meld", pa.float64()),
    ("audio_s", pa.float64()), ("status", pa.string()), ("status_detail", pa.string()),
    ("dataset_status", pa.string())])


def shard_rows(utterances: pd.DataFrame, shard: int, n_shards: int) -> pd.DataFrame:
    """The utterances of shard `shard` of `n_shards` (whole dialogues stay in one shard)."""
    keys = [dialogue_key(s, d) for s, d in zip(utterances["meld_split"], utterances["dialogue_id"])]
    mask = np.array([shard_of(k, n_shards) == shard for k in keys], dtype=bool)
    return utterances[mask].reset_index(drop=True)


def _settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    from ecem.transcribe.asr import resolve_model

    return {"transcribe": dict(cfg), "model_resolved": resolve_model(cfg["model"])}


def _skipped_row(utt: Mapping[str, Any], status: str, detail: str) -> dict[str, Any]:
    return {**{k: utt[k] for k in UTTERANCE_KEYS}, "text_meld": utt["text"], "text_asr": "",
            "segments": [], "words": [], "avg_logprob": math.nan, "confidence": math.nan,
            "no_speech_prob": math.nan, "n_tokens": 0, "wer_vs_meld": math.nan,
            "audio_s": float(utt.get("duration_s") or math.nan), "status": status,
            "status_detail": detail, "dataset_status": utt["status"]}


def transcribe_utterances(utterances: pd.DataFrame, cfg: Mapping[str, Any],
                          threads: int = 1) -> pd.DataFrame:
    """Transcribe the usable clips of `utterances`; one output row per input row, same order."""
    from ecem.transcribe.asr import AsrSettings, Transcriber, load_audio

    rows: list[dict[str, Any] | None] = [None] * len(utterances)
    todo: list[int] = []
    audios: list[np.ndarray] = []
    records = utterances.to_dict("records")
    for i, utt in enumerate(records):
        status, detail = utt["status"], utt.get("status_detail") or ""
        if status == "no_audio":
            rows[i] = _skipped_row(utt, "no_audio", f"ASR not run: {detail or 'no audio'}")
        elif status not in TRANSCRIBABLE:
            rows[i] = _skipped_row(utt, "failed", f"skipped: dataset status {status}"
                                   + (f" ({detail})" if detail else ""))
        else:
            try:
                audios.append(load_audio(utt["video_path"]))
                todo.append(i)
            except Exception as err:  # noqa: BLE001 - a fault of the clip is recorded, run continues
                why = data_fault(err, utt["video_path"])
                rows[i] = _skipped_row(utt, "failed", f"audio decode failed: {why}")
    if todo:
        transcriber = Transcriber(AsrSettings.from_config(cfg, threads))
        started = time.perf_counter()
        results = transcriber.transcribe(audios, progress=lambda it: tqdm(it, desc="asr batches"))
        elapsed = time.perf_counter() - started
        audio_s = sum(r.audio_s for r in results)
        log.info("transcribed %d clips (%.1f s audio) in %.1f s: real-time factor %.3f",
                 len(results), audio_s, elapsed, elapsed / max(audio_s, 1e-9))
        for i, res in zip(todo, results):
            utt = records[i]
            ok = res.status == "ok"
            rows[i] = {**{k: utt[k] for k in UTTERANCE_KEYS}, "text_meld": utt["text"], "text_asr": res.text,
                       "segments": res.segments, "words": res.words,
                       "avg_logprob": res.avg_logprob, "confidence": res.confidence,
                       "no_speech_prob": res.no_speech_prob, "n_tokens": res.n_tokens,
                       "wer_vs_meld": wer(utt["text"], res.text) if ok else math.nan,
                       "audio_s": res.audio_s, "status": res.status,
                       "status_detail": res.status_detail, "dataset_status": utt["status"]}
    return pd.DataFrame(rows, columns=SCHEMA.names)


def run_shard(utterances_path: str, shard: int, n_shards: int, cfg: Mapping[str, Any],
              out: str, threads: int = 1) -> None:
    """Rule transcribe_shard: one shard of dialogues → its transcripts table."""
    part = shard_rows(read_table(utterances_path), shard, n_shards)
    log.info("shard %d/%d: %d utterances (%s)", shard, n_shards, len(part),
             part["status"].value_counts().to_dict() if len(part) else {})
    table = transcribe_utterances(part, cfg, threads)
    write_table(table, out, STAGE, {**_settings(cfg), "shard": shard}, schema=SCHEMA)


def run_gather(parts: Sequence[str], utterances_path: str, out: str) -> None:
    """Rule gather_transcripts: concatenate the shards, check one row per utterance."""
    table = pd.concat([read_table(p) for p in parts], ignore_index=True)
    utterances = read_table(utterances_path, columns=UTTERANCE_KEYS)
    if table.duplicated(UTTERANCE_KEYS).any():
        raise ValueError("an utterance was transcribed in more than one shard")
    want = set(map(tuple, utterances[UTTERANCE_KEYS].itertuples(index=False)))
    have = set(map(tuple, table[UTTERANCE_KEYS].itertuples(index=False)))
    if want != have:
        raise ValueError(f"transcripts do not match utterances: missing {sorted(want - have)[:5]}, "
                         f"extra {sorted(have - want)[:5]}")
    table = table.sort_values(UTTERANCE_KEYS, ignore_index=True)
    settings = read_metadata(parts[0])["settings"]
    settings.pop("shard", None)
    settings["shards"] = len(parts)
    write_table(table, out, STAGE, settings, schema=SCHEMA)
    log.info("transcripts: %d utterances, %s", len(table), table["status"].value_counts().to_dict())


def transcribe_quality(transcripts: pd.DataFrame, utterances: pd.DataFrame,
                       policy: Mapping[str, Any]) -> dict[str, Any]:
    """The data-quality summary of the stage."""
    counts = {s: int((transcripts["status"] == s).sum()) for s in STATUSES}
    ok = transcripts[transcripts["status"] == "ok"]
    texts = resolve_texts(utterances, transcripts, policy)
    median = float(ok["wer_vs_meld"].median()) if len(ok) else None
    return {
        "utterances": int(len(transcripts)),
        "transcribed": counts["ok"],
        "no_speech": counts["no_speech"],
        "status_counts": counts,
        "median_wer_vs_meld": median,
        "mean_wer_vs_meld": float(ok["wer_vs_meld"].mean()) if len(ok) else None,
        "mean_confidence": float(ok["confidence"].mean()) if len(ok) else None,
        "audio_s": float(ok["audio_s"].sum()),
        "text_policy": {**dict(policy),
                        "text_source_counts": texts["text_source"].value_counts().to_dict()},
        "not_transcribed": [
            {**{k: (int(v) if k != "meld_split" else v) for k, v in zip(UTTERANCE_KEYS, key)},
             "status": st, "detail": det}
            for key, st, det in zip(transcripts[UTTERANCE_KEYS].itertuples(index=False),
                                    transcripts["status"], transcripts["status_detail"])
            if st != "ok"],
    }


def run_quality(transcripts_path: str, utterances_path: str, policy: Mapping[str, Any],
                out: str) -> None:
    """Rule transcribe_quality: write results/quality/transcribe.json."""
    summary = transcribe_quality(read_table(transcripts_path), read_table(utterances_path), policy)
    summary["settings"] = read_metadata(transcripts_path)["settings"]
    write_json(summary, Path(out))
