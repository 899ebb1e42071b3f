"""Entry points of the video token rules (`features.clip`): build the tiny model, extract one
shard, gather.

One function per rule so the workflow scripts stay one call long and each step runs (and is
tested) without Snakemake.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ecem.artifacts import read_table, write_json
from ecem.features.accounting import gather_token_shards, sample_accounting
from ecem.features.encoder import VisionPatchEncoder
from ecem.features.extract import ExtractStats, extract_tokens, feature_row
from ecem.features.frames import plan_samples
from ecem.features.video import PADDING_RULE, POOLING_RULE, SCHEMA, STAGE
from ecem.sharding import dialogue_key, shard_of
from ecem.tokens import write_features

log = logging.getLogger(__name__)


def run_build_tiny(out_dir: str, image_size: int, tiny: Mapping[str, Any]) -> None:
    """Rule build_tiny_clip: a tiny random CLIP vision tower (`features.clip.model: random:<name>`)."""
    from ecem.features.tiny_models import build_tiny_clip_from_config

    build_tiny_clip_from_config(out_dir, image_size, tiny)
    log.info("built tiny random CLIPVisionModel (%s px, %s) in %s", image_size, dict(tiny), out_dir)


def stage_settings(encoder: VisionPatchEncoder, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What goes into the token file's metadata."""
    return {**encoder.settings(), "num_frames": int(cfg["num_frames"]), "sampling": cfg["sampling"],
            "decoder": cfg["decoder"], "batch_size": int(cfg["batch_size"]),
            "token_dtype": "float16", "padding_rule": PADDING_RULE, "pooling": POOLING_RULE}


def extract_shard(clips_path: str, segments_path: str, shard: int, n_shards: int,
                  cfg: Mapping[str, Any], out_tokens: str, threads: int = 1, base_dir: str = ".",
                  progress: bool = True) -> dict[str, Any]:
    """Extract tokens for the samples of dialogues hashed to `shard`; returns the shard's stats."""
    import torch

    clips = read_table(clips_path)
    segments = read_table(segments_path)
    keys = [dialogue_key(s, d) for s, d in zip(clips["meld_split"], clips["dialogue_id"])]
    clips = clips[[shard_of(k, n_shards) == shard for k in keys]]
    plans, excluded = plan_samples(clips, segments, int(cfg["num_frames"]), cfg["sampling"], base_dir)
    encoder = VisionPatchEncoder(cfg["model"], int(cfg["image_size"]), int(cfg["num_frames"]),
                               int(cfg["hidden_layer"]), cfg["resize"], cfg["dtype"], cfg["device"])
    # On the CPU one core decodes (one single-threaded codec; measured faster than more decode
    # workers competing with the model) and the model gets the others. On a GPU the decode
    # workers get every core.
    threads = max(1, int(threads))
    on_cpu = not encoder.device.startswith("cuda")
    torch.set_num_threads(max(1, threads - 1) if on_cpu else threads)
    settings = stage_settings(encoder, cfg)
    stats = ExtractStats()
    items = extract_tokens(plans, encoder, int(cfg["batch_size"]), cfg["decoder"], progress, stats,
                           decode_workers=max(1, threads // 2) if on_cpu else threads)
    padded = 0

    def rows():
        nonlocal padded
        for item in items:
            row = feature_row(item, int(cfg["num_frames"]))
            padded += row["padding"] != "none"
            yield row

    n = write_features(rows(), out_tokens, settings, schema=SCHEMA, stage=STAGE)
    log.info("shard %d: %d samples with tokens, %d failed here, %d excluded upstream; %d distinct "
             "frames encoded for %d picked (decode %.1fs, encode %.1fs, wall %.1fs)", shard, n,
             len(stats.failed), len(excluded), stats.frames_encoded, stats.frames_picked,
             stats.decode_s, stats.encode_s, stats.wall_s)
    return {"shard": shard, "samples": int(len(clips)), "with_features": n, "padded": padded,
            "excluded": {**excluded, **stats.failed}, "sources": stats.sources,
            "frames_picked": stats.frames_picked, "frames_encoded": stats.frames_encoded,
            "seconds": {"decode": round(stats.decode_s, 3), "model": round(stats.encode_s, 3),
                        "extract_wall": round(stats.wall_s, 3)}}


def run_extract(clips_path: str, segments_path: str, shard: int, n_shards: int,
                cfg: Mapping[str, Any], out_tokens: str, out_stats: str, threads: int) -> None:
    """Rule clip_features_shard."""
    stats = extract_shard(clips_path, segments_path, shard, n_shards, cfg, out_tokens, threads)
    write_json(stats, out_stats)


def video_quality(shard_stats: Sequence[Mapping[str, Any]], settings: Mapping[str, Any],
                  n_clips: int) -> dict[str, Any]:
    """results/quality/clip_features.json: every sample counted, none dropped silently."""
    return {
        "stage": STAGE,
        **sample_accounting(shard_stats, n_clips),
        "frames": {"picked": sum(int(s["frames_picked"]) for s in shard_stats),
                   "encoded": sum(int(s["frames_encoded"]) for s in shard_stats),
                   "sources": sum(int(s["sources"]) for s in shard_stats)},
        "model": settings.get("model"),
        "random_weights": settings.get("random_weights"),
        "layout": settings.get("layout"),
    }


def run_gather(token_parts: Sequence[str], stats_parts: Sequence[str], clips_path: str,
               out_tokens: str, out_array: str, out_quality: str) -> None:
    """Rule clip_features: shards → one clip.parquet, its token array (what FAME-Net reads) and
    the stage's quality summary."""
    quality = gather_token_shards(token_parts, stats_parts, clips_path, out_tokens, out_array, out_quality,
                                  video_quality, schema=SCHEMA, stage=STAGE)
    log.info("video tokens: %d of %d samples; excluded %s", quality["with_features"], quality["samples"],
             quality["excluded"]["by_reason"])
