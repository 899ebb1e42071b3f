"""Entry points of the audio token rules (`features.audio`): extract one shard, gather.

Per dialogue of a shard: decode the audio of every segment its `ok` samples use (once), sort out
the samples that cannot get audio tokens (their clip is not ok; a segment is missing, corrupt or
undecodable; or every segment of the prefix is silent or has no audio stream → `no_audio`),
encode each segment the remaining samples need once, and pool each sample's prefix from the
dialogue's running frame sums. Every sample of the shard ends with tokens or with a reason.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecem.artifacts import read_table, recorded_path, write_json
from ecem.audio_decode import AUDIO_SAMPLE_RATE, load_audio
from ecem.devices import resolve_device
from ecem.faults import data_fault
from ecem.features import audio
from ecem.features.accounting import gather_token_shards, sample_accounting
from ecem.features.audio_encoder import WINDOW_S, AudioEncoder, load_encoder
from ecem.sharding import dialogue_key, shard_of
from ecem.tokens import write_features

log = logging.getLogger(__name__)

NO_AUDIO = "no_audio"


@dataclasses.dataclass
class SegmentAudio:
    """One segment's decoded audio, or why it has none usable (`error`, e.g. `corrupt: ...`)."""

    audio: np.ndarray
    peak_dbfs: float
    error: str = ""


@dataclasses.dataclass
class ShardStats:
    samples: int = 0
    excluded: dict[str, str] = dataclasses.field(default_factory=dict)
    with_features: int = 0
    padded: int = 0
    segments_decoded: int = 0
    segments_encoded: int = 0
    audio_s_encoded: float = 0.0
    decode_s: float = 0.0


def read_segment(record: Mapping[str, Any] | None, base_dir: str | Path = ".") -> SegmentAudio:
    """Decode a segment's audio (16 kHz mono); a bad segment becomes an `error`, never a crash (a
    fault of the machine while reading it raises EnvironmentFault and fails the job)."""
    empty = np.zeros(0, np.float32)
    if record is None:
        return SegmentAudio(empty, float("-inf"), "missing: segment not in segments.parquet")
    path = record.get("segment_path")
    if record.get("status") != "ok" or not isinstance(path, str) or not path:
        return SegmentAudio(empty, float("-inf"),
                            f"corrupt: segment status {record.get('status')} ({record.get('status_detail')})")
    file = recorded_path(path, base_dir)
    if not file.is_file():
        return SegmentAudio(empty, float("-inf"), f"missing: segment file not found: {file}")
    try:
        wave = load_audio(file)
    except Exception as exc:  # noqa: BLE001 - any decoder failure quarantines the segment alone
        return SegmentAudio(empty, float("-inf"), f"corrupt: {file.name}: {data_fault(exc, file)}")
    return SegmentAudio(wave, audio.peak_dbfs(wave))


def sample_status(seg_uids: Sequence[int], segs: Mapping[int, SegmentAudio],
                  silence_dbfs: float) -> str:
    """'' when the sample can get audio tokens, else the reason (`missing|corrupt|no_audio: ...`)."""
    if not seg_uids:
        return f"{NO_AUDIO}: the prefix has no segments"
    for uid in seg_uids:
        if segs[uid].error:
            return f"{segs[uid].error} (utterance {uid})"
    loudest = max(segs[u].peak_dbfs for u in seg_uids)
    if loudest < silence_dbfs:
        return (f"{NO_AUDIO}: all {len(seg_uids)} segment(s) of the prefix are silent or without "
                f"an audio stream (loudest peak {loudest:.1f} dBFS < {silence_dbfs} dBFS)")
    return ""


def dialogue_rows(samples: pd.DataFrame, records: Mapping[int, Mapping[str, Any]],
                  encoder: AudioEncoder, num_tokens: int, silence_dbfs: float, stats: ShardStats,
                  base_dir: str | Path = ".") -> Iterator[dict[str, Any]]:
    """Feature rows of one dialogue's `ok` samples (`records`: its segments by utterance id);
    the samples left out land in `stats.excluded` with their reason."""
    samples = samples.sort_values("utterance_id")
    seg_lists = {str(r.sample_id): [int(s["utterance_id"]) for s in r.segments]
                 for r in samples.itertuples(index=False)}
    start = time.perf_counter()
    segs = {uid: read_segment(records.get(uid), base_dir)
            for uid in sorted({u for uids in seg_lists.values() for u in uids})}
    stats.decode_s += time.perf_counter() - start
    stats.segments_decoded += len(segs)
    keep = []
    for sid, uids in seg_lists.items():
        reason = sample_status(uids, segs, silence_dbfs)
        if reason:
            stats.excluded[sid] = reason
        else:
            keep.append(sid)
    if not keep:
        return
    timeline = sorted({u for sid in keep for u in seg_lists[sid]})  # utterance order
    frames = encoder.encode([segs[u].audio for u in timeline])
    stats.segments_encoded += len(timeline)
    stats.audio_s_encoded += sum(segs[u].audio.size for u in timeline) / AUDIO_SAMPLE_RATE
    csum = audio.cumulative(np.concatenate(frames))
    ends = np.cumsum([f.shape[0] for f in frames])
    position = {u: k for k, u in enumerate(timeline)}
    rows = {str(r.sample_id): r for r in samples.itertuples(index=False)}
    for sid in keep:
        uids = seg_lists[sid]
        if uids == timeline[: len(uids)]:  # a prefix of the dialogue's timeline: shared sums
            n, sums = int(ends[len(uids) - 1]), csum
        else:  # segments not a timeline prefix (not produced by the render stage): pool its own
            own = np.concatenate([frames[position[u]] for u in uids])
            n, sums = own.shape[0], audio.cumulative(own)
        tokens, padding = audio.pool_prefix(sums, n, num_tokens)
        stats.padded += padding != audio.PADDING_NONE
        row = rows[sid]
        yield {"sample_id": sid, "meld_split": str(row.meld_split), "dialogue_id": int(row.dialogue_id),
               "utterance_id": int(row.utterance_id), "tokens": audio.token_bytes(tokens),
               "shape": list(tokens.shape), "n_encoder_frames": n,
               "duration_s": sum(segs[u].audio.size for u in uids) / AUDIO_SAMPLE_RATE,
               "n_segments": len(uids), "padding": padding}


def stage_settings(encoder: AudioEncoder, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The feature file's metadata: the encoder and the token layout (A = num_tokens, D)."""
    a, d = int(cfg["num_tokens"]), int(encoder.hidden_size)
    return {**encoder.settings(), "num_tokens": a, "hidden_size": d,
            "layout": {"num_tokens": a, "hidden_size": d}, "frame_s": encoder.frame_s,
            "window_s": WINDOW_S, "sample_rate": AUDIO_SAMPLE_RATE,
            "silence_dbfs": float(cfg["silence_dbfs"]), "batch_size": int(cfg["batch_size"]),
            "token_dtype": "float16", "pooling": audio.POOLING_RULE, "padding_rule": audio.PADDING_RULE,
            "source": "segments"}


def extract_shard(clips_path: str, segments_path: str, shard: int, n_shards: int,
                  cfg: Mapping[str, Any], out_tokens: str, threads: int = 1,
                  base_dir: str | Path = ".", encoder: AudioEncoder | None = None) -> dict[str, Any]:
    """Audio tokens for the samples of dialogues hashed to `shard`; returns the shard's stats."""
    clips = read_table(clips_path)
    segments = read_table(segments_path)
    keys = [dialogue_key(s, d) for s, d in zip(clips["meld_split"], clips["dialogue_id"])]
    clips = clips[[shard_of(k, n_shards) == shard for k in keys]]
    stats = ShardStats(samples=len(clips))
    for r in clips.itertuples(index=False):
        if r.status != "ok":
            stats.excluded[str(r.sample_id)] = f"{r.status}: {r.status_detail}".strip()
    ok = clips[clips["status"] == "ok"]
    if encoder is None:
        encoder = load_encoder(cfg, resolve_device(str(cfg["device"]), "features.audio.device"), threads)
    by_dialogue = {k: g.set_index("utterance_id", drop=False).to_dict("index")
                   for k, g in segments.groupby(["meld_split", "dialogue_id"])}
    settings = stage_settings(encoder, cfg)
    start = time.perf_counter()

    def rows() -> Iterator[dict[str, Any]]:
        for (split, dia), group in ok.groupby(["meld_split", "dialogue_id"], sort=True):
            records = {int(u): r for u, r in by_dialogue.get((split, int(dia)), {}).items()}
            yield from dialogue_rows(group, records, encoder, int(cfg["num_tokens"]),
                                     float(cfg["silence_dbfs"]), stats, base_dir)

    stats.with_features = write_features(rows(), out_tokens, settings, schema=audio.SCHEMA,
                                         stage=audio.STAGE)
    wall = time.perf_counter() - start
    log.info("audio shard %d: %d of %d samples with tokens, %d excluded; %d segments decoded, %d "
             "encoded (%.1f s of audio, %d windows; decode %.1fs, encode %.1fs, wall %.1fs)", shard,
             stats.with_features, stats.samples, len(stats.excluded), stats.segments_decoded,
             stats.segments_encoded, stats.audio_s_encoded, encoder.windows_encoded, stats.decode_s,
             encoder.encode_s, wall)
    return {"shard": shard, "samples": stats.samples, "with_features": stats.with_features,
            "padded": stats.padded, "excluded": stats.excluded,
            "segments": {"decoded": stats.segments_decoded, "encoded": stats.segments_encoded,
                         "windows": encoder.windows_encoded},
            "audio_s_encoded": round(stats.audio_s_encoded, 3),
            "seconds": {"decode": round(stats.decode_s, 3), "model": round(encoder.encode_s, 3),
                        "extract_wall": round(wall, 3)}}


def run_extract(clips_path: str, segments_path: str, shard: int, n_shards: int,
                cfg: Mapping[str, Any], out_tokens: str, out_stats: str, threads: int) -> None:
    """Rule audio_features_shard."""
    write_json(extract_shard(clips_path, segments_path, shard, n_shards, cfg, out_tokens, threads),
               out_stats)


def audio_quality(shard_stats: Sequence[Mapping[str, Any]], settings: Mapping[str, Any],
                  n_clips: int) -> dict[str, Any]:
    """results/quality/audio_features.json: every sample has tokens or a reason, none dropped."""
    accounting = sample_accounting(shard_stats, n_clips)
    return {
        "stage": audio.STAGE,
        **accounting,
        "no_audio": accounting["excluded"]["by_reason"].get(NO_AUDIO, 0),
        "segments": {k: sum(int(s["segments"][k]) for s in shard_stats)
                     for k in ("decoded", "encoded", "windows")},
        "audio_s_encoded": round(sum(float(s["audio_s_encoded"]) for s in shard_stats), 3),
        "model": settings.get("model"),
        "random_weights": settings.get("random_weights"),
        "layout": settings.get("layout"),
    }


def run_gather(token_parts: Sequence[str], stats_parts: Sequence[str], clips_path: str,
               out_tokens: str, out_array: str, out_quality: str) -> None:
    """Rule audio_features: shards → audio.parquet, its token array (what FAME-Net reads) and the
    stage's quality summary."""
    quality = gather_token_shards(token_parts, stats_parts, clips_path, out_tokens, out_array, out_quality,
                                  audio_quality, schema=audio.SCHEMA, stage=audio.STAGE)
    log.info("audio features: %d of %d samples; excluded %s", quality["with_features"], quality["samples"],
             quality["excluded"]["by_reason"])
