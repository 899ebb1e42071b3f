"""Entry points of the dataset stage's rules: read inputs, call the library, write artifacts.

One function per rule, so the workflow scripts stay one call long and each step can be run
(and tested) without Snakemake.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ecem.artifacts import read_metadata, read_table, write_json, write_table
from ecem.dataset.annotations import QUARANTINE_COLUMNS, load_annotations, resolve_annotations
from ecem.dataset.probe import probe_utterances, touched_utterances
from ecem.dataset.quality import dataset_quality
from ecem.dataset.render import render_shard
from ecem.dataset.split import grouped_split
from ecem.dataset.statistics import dataset_statistics
from ecem.meld import UTTERANCE_KEYS, MeldLayout, read_meld, read_meld_rows

log = logging.getLogger(__name__)
STAGE = "dataset"


def run_resolve(meld_cfg: dict[str, Any], annotations_path: str, cfg: dict[str, Any],
                out_resolved: str, out_quarantine: str) -> None:
    """CSVs + ECEM JSON → resolved samples and quarantined annotations and MELD rows (no videos
    needed). A file that cannot be used at all stops the job with one line naming it."""
    meld, bad_rows = read_meld_rows(MeldLayout.from_config(meld_cfg))
    records = load_annotations(annotations_path)
    resolved, quarantine = resolve_annotations(
        records, meld, cfg["match"]["min_score"], cfg["match"]["speaker_weight"], cfg["drop_neutral"])
    rows = pd.DataFrame({"source": "meld", "annotation_id": None,
                         "annotation_ref": [f"{Path(p).name}:{n}" for p, n in zip(bad_rows["csv_path"], bad_rows["line"])],
                         "reason": bad_rows["reason"], "detail": bad_rows["detail"]},
                        columns=QUARANTINE_COLUMNS)
    quarantine = pd.concat([quarantine, rows], ignore_index=True) if len(rows) else quarantine
    if resolved.empty:
        raise ValueError(f"none of the {len(records)} annotations in {annotations_path} resolved to a "
                         f"usable MELD utterance: {quarantine['reason'].value_counts().to_dict()}")
    settings = {"match": cfg["match"], "drop_neutral": cfg["drop_neutral"], "n_annotations": len(records)}
    write_table(resolved, out_resolved, STAGE, settings)
    write_table(quarantine, out_quarantine, STAGE, settings)
    log.info("resolved %d of %d annotations; quarantined %s", len(resolved), len(records),
             quarantine["reason"].value_counts().to_dict())


def run_split(resolved_path: str, cfg: dict[str, Any], out: str) -> None:
    """Resolved samples → annotations.parquet with the dialogue-grouped ECEM split."""
    samples = read_table(resolved_path)
    samples["split"] = grouped_split(samples, cfg["ratios"], cfg["seed"])
    write_table(samples, out, STAGE, {"split": cfg})
    log.info("split: %s", samples["split"].value_counts().to_dict())


def run_statistics(annotations_path: str, out: str) -> None:
    """annotations.parquet → statistics.json (counts per split and emotion, cause lengths): what
    the report's dataset figures show, from the CSVs and the JSON alone."""
    stats = dataset_statistics(read_table(annotations_path))
    write_json({"stage": STAGE, **stats}, out)
    log.info("dataset statistics: %d samples in %d dialogues", stats["samples"], stats["dialogues"])


def run_probe(resolved_path: str, meld_cfg: dict[str, Any], cfg: dict[str, Any], out: str,
              threads: int) -> None:
    """Probe every clip the samples touch → utterances.parquet."""
    samples = read_table(resolved_path)
    meld = read_meld(MeldLayout.from_config(meld_cfg), tuple(sorted(samples["meld_split"].unique())))
    rows = touched_utterances(meld, samples)
    write_table(probe_utterances(rows, cfg, threads), out, STAGE, {"probe": cfg})


def run_render(resolved_path: str, utterances_path: str, shard: int, n_shards: int,
               dedup: dict[str, Any], render: dict[str, Any], out_dir: str, out_segments: str,
               out_clips: str, threads: int) -> None:
    """One shard of dialogues → its segments, prefix clips and their tables."""
    settings = {"dedup": dedup, "render": render, "shard": shard}
    segments, clips = render_shard(read_table(resolved_path), read_table(utterances_path), shard,
                                   n_shards, out_dir, dedup, render, threads)
    write_table(segments, out_segments, STAGE, settings)
    write_table(clips, out_clips, STAGE, settings)


def run_gather(segment_parts: Sequence[str], clip_parts: Sequence[str], out_segments: str,
               out_clips: str) -> None:
    """Concatenate the shards' tables into segments.parquet and clips.parquet."""
    for parts, out in ((segment_parts, out_segments), (clip_parts, out_clips)):
        table = pd.concat([read_table(p) for p in parts], ignore_index=True)
        table = table.sort_values(UTTERANCE_KEYS, ignore_index=True)
        settings = read_metadata(parts[0])["settings"]
        settings.pop("shard", None)
        write_table(table, out, STAGE, settings)


def run_quality(annotations_path: str, quarantine_path: str, resolved_path: str,
                utterances_path: str, segments_path: str, clips_path: str, out: str) -> None:
    """Write quality.json for the dataset stage."""
    n_annotations = read_metadata(resolved_path)["settings"]["n_annotations"]
    summary = dataset_quality(read_table(quarantine_path), read_table(annotations_path),
                              read_table(utterances_path), read_table(segments_path),
                              read_table(clips_path), n_annotations)
    write_json(summary, Path(out))
