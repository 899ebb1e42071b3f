"""CLIP spatio-temporal tokens: sampling, pooling, shapes at 224/336, padding, quarantine, rerun bytes.

Videos are generated here (PyAV, libx264); models are tiny random CLIPVisionModels built with
`build_tiny_clip` and loaded back through `from_pretrained` like real checkpoints.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
import pytest

from ecem.artifacts import read_table, write_table
from ecem.faults import EnvironmentFault
from ecem.features.encoder import VisionPatchEncoder, fold_pixel_normalization, pool_spatio_temporal
from ecem.features.extract import ExtractStats, extract_tokens
from ecem.features.frames import decode_frames, plan_samples, uniform_frame_indices
from ecem.features.tiny_models import build_tiny_clip
from ecem.features.video import (
    PAPER_LAYOUT,
    PAPER_LAYOUT_336,
    TokenLayout,
    read_settings,
    read_video_layout,
)
from ecem.features.video_stage import extract_shard, video_quality
from ecem.ffmpeg import run_ffmpeg
from ecem.model_refs import is_random_model
from ecem.tokens import PADDING_NONE, PADDING_ZEROS_AFTER, load_tokens

H, W = 48, 64


def write_video(path: Path, n_frames: int, seed: int) -> Path:
    """An h264 clip whose frames differ (a moving bar over a seeded colour field)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12"}
        for k in range(n_frames):
            frame = base.copy()
            frame[:, (3 * k) % W: (3 * k) % W + 6] = (255 - 7 * k) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def tiny224(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("m") / "tiny-clip-224", image_size=224,
                           hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32)


@pytest.fixture(scope="module")
def tiny336(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("m") / "tiny-clip-336", image_size=336,
                           hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three utterance clips of one dialogue (+ one of another) and four prefix samples."""
    root = tmp_path_factory.mktemp("corpus")
    n = {0: 30, 1: 26, 2: 34}
    vids = {u: write_video(root / f"dia0_utt{u}.mp4", k, seed=u) for u, k in n.items()}
    write_video(root / "dia1_utt0.mp4", 12, seed=9)
    (root / "dia1_utt1.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video")
    segs = [  # overlaps removed: utterance u keeps frames first..last of its source clip
        ("train", 0, 0, vids[0].name, 0, 29), ("train", 0, 1, vids[1].name, 4, 25),
        ("train", 0, 2, vids[2].name, 3, 33), ("train", 1, 0, "dia1_utt0.mp4", 0, 11),
        ("train", 1, 1, "dia1_utt1.mp4", 0, 9),
    ]
    segments = pd.DataFrame([{"meld_split": s, "dialogue_id": d, "utterance_id": u, "video_path": v,
                              "first_frame": a, "last_frame": b, "n_frames": b - a + 1,
                              "source_frames": list(range(a, b + 1)), "status": "ok"}
                             for s, d, u, v, a, b in segs])

    def seg_list(d: int, utts: list[int]) -> list[dict]:
        rows = segments[(segments.dialogue_id == d) & segments.utterance_id.isin(utts)]
        return [{"utterance_id": int(r.utterance_id), "first_frame": int(r.first_frame),
                 "last_frame": int(r.last_frame), "n_frames": int(r.n_frames), "overlap_frames": 0}
                for r in rows.itertuples()]

    def clip_row(d: int, u: int, utts: list[int], status: str = "ok", detail: str = "") -> dict:
        segs_ = seg_list(d, utts) if status == "ok" else []
        return {"sample_id": f"train/dia{d}_utt{u}", "meld_split": "train", "dialogue_id": d,
                "utterance_id": u, "status": status, "status_detail": detail, "segments": segs_,
                "n_frames": sum(s["n_frames"] for s in segs_), "clip_path": None}

    clips = pd.DataFrame([
        clip_row(0, 0, [0]), clip_row(0, 1, [0, 1]), clip_row(0, 2, [0, 1, 2]),
        clip_row(1, 1, [0, 1]),  # its second source is corrupt → fails at decode time
        clip_row(1, 2, [], "quarantined", "target clip unusable (missing)"),
    ])
    clips_path, segments_path = root / "clips.parquet", root / "segments.parquet"
    write_table(clips, clips_path, "dataset")
    write_table(segments, segments_path, "dataset")
    return {"root": root, "clips": clips, "segments": segments, "clips_path": clips_path,
            "segments_path": segments_path}


def cfg(model: Path, image_size: int = 224, num_frames: int = 40, **kw) -> dict:
    base = {"model": str(model), "image_size": image_size, "num_frames": num_frames, "hidden_layer": -2,
            "resize": "squash", "dtype": "auto", "device": "cpu", "batch_size": 16,
            "sampling": "segments", "decoder": "pyav"}
    return {**base, **kw}


# ------------------------------------------------------------------------------- pure functions
def test_uniform_indices_follow_video_chatgpt() -> None:
    # Video-ChatGPT: t = min(F, T) bins over [0, F-1], middle of the rounded bin edges
    # F=416: bin 4.15 frames; e.g. i=4: edges round(16.6)=17, round(20.75)=21 → 19
    assert uniform_frame_indices(416, 100)[:6] == [2, 6, 10, 14, 19, 23]
    assert uniform_frame_indices(416, 100)[-1] == 413
    assert uniform_frame_indices(10, 4) == [1, 3, 5, 8]  # edges 0, 2, 4 (4.5 → 4, half to even), 7, 9
    assert uniform_frame_indices(3, 100) == [0, 1, 1]  # F < T: F positions, rounding repeats one
    assert uniform_frame_indices(1, 100) == [0]
    assert uniform_frame_indices(0, 100) == []
    for f in (1, 7, 99, 100, 101, 1000):
        idx = uniform_frame_indices(f, 100)
        assert len(idx) == min(f, 100) and idx == sorted(idx) and 0 <= idx[0] and idx[-1] < f


def test_layouts() -> None:
    assert PAPER_LAYOUT.total == 356 and PAPER_LAYOUT.shape == (356, 1024)
    assert PAPER_LAYOUT_336.total == 676
    assert TokenLayout.for_image(224, 14, 100) == TokenLayout(100, 256)
    assert TokenLayout.for_image(336, 14, 100, 1024) == PAPER_LAYOUT_336
    with pytest.raises(ValueError):
        TokenLayout.for_image(224, 15, 100)


def test_reference_pooling_matches_numpy() -> None:
    feats = np.random.default_rng(0).normal(size=(7, 9, 5)).astype(np.float32)
    out = pool_spatio_temporal(feats, 10)
    assert out.shape == (19, 5)
    np.testing.assert_allclose(out[:7], feats.mean(axis=1), rtol=1e-6)
    assert not out[7:10].any()
    np.testing.assert_allclose(out[10:], feats.mean(axis=0), rtol=1e-6)


# ------------------------------------------------------------------------------- the tiny model
def test_tiny_model_loads_like_a_checkpoint(tiny224: Path) -> None:
    from transformers import CLIPImageProcessor, CLIPVisionModel

    assert is_random_model(str(tiny224))
    model = CLIPVisionModel.from_pretrained(tiny224)
    proc = CLIPImageProcessor.from_pretrained(tiny224)
    assert model.config.image_size == 224 and model.config.patch_size == 14
    assert proc.crop_size["height"] == 224 and proc.size["shortest_edge"] == 224
    assert proc.image_mean == pytest.approx([0.48145466, 0.4578275, 0.40821073])


def test_truncated_encoder_equals_full_hidden_state(tiny336: Path) -> None:
    import torch
    from transformers import CLIPVisionModel

    enc = VisionPatchEncoder(str(tiny336), 336, 8, hidden_layer=-2)
    frames = np.random.default_rng(1).integers(0, 256, (3, H, W, 3), dtype=np.uint8)
    pixels = enc.preprocess(frames)
    ours = enc.encode(pixels)
    full = CLIPVisionModel.from_pretrained(tiny336).eval()
    with torch.inference_mode():
        ref = full(pixel_values=_processor_pixels(enc, pixels),
                   output_hidden_states=True).hidden_states[-2][:, 1:]
    assert ours.shape == (3, 576, 16)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-5, atol=1e-5)


def _processor_pixels(enc: VisionPatchEncoder, pixels: Any) -> Any:
    """CLIP's image processor on S×S uint8 frames: its resize and crop are identities there, so
    this is its rescale + normalisation alone — what Video-ChatGPT feeds the model."""
    return enc.processor(images=pixels, return_tensors="pt")["pixel_values"]


def test_squash_preprocessing_equals_nearest_resize(tiny224: Path) -> None:
    import torch
    import torch.nn.functional as F

    enc = VisionPatchEncoder(str(tiny224), 224, 8)
    frames = np.random.default_rng(2).integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    ours = enc.preprocess(frames)
    assert ours.dtype == torch.uint8 and ours.shape == (2, 3, 224, 224)
    assert torch.equal(ours, F.interpolate(x, size=(224, 224), mode="nearest"))


def test_folded_normalisation_equals_clip_processor_then_model(tiny224: Path) -> None:
    """The encoder folds the processor's rescale + normalisation into the patch embedding; its
    tokens equal the unfolded model's on the processor's normalised pixels (Video-ChatGPT)."""
    import torch
    from transformers import CLIPVisionModel

    enc = VisionPatchEncoder(str(tiny224), 224, 8)
    frames = np.random.default_rng(5).integers(0, 256, (3, 240, 320, 3), dtype=np.uint8)
    pixels = enc.preprocess(frames)
    full = CLIPVisionModel.from_pretrained(tiny224).eval()
    with torch.inference_mode():
        ref = full(pixel_values=_processor_pixels(enc, pixels),
                   output_hidden_states=True).hidden_states[-2][:, 1:]
    np.testing.assert_allclose(enc.encode(pixels), ref.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError, match="uint8"):  # normalised floats would be normalised twice
        enc.encode(_processor_pixels(enc, pixels))


@pytest.mark.parametrize("hidden_layer", [-2, -1])
def test_dinov2_backbone_gives_the_hidden_layers_patch_tokens(dinov2_dir: Path, hidden_layer: int) -> None:
    """The same encoder takes a DINOv2: its own ImageNet normalisation folded in, the CLS token
    dropped, any size a multiple of 14 (position grid interpolated), and hidden_states[k] itself
    — for -1 the last layer's output *before* DINOv2's final layer norm, as for CLIP."""
    import torch
    from transformers import Dinov2Model

    enc = VisionPatchEncoder(str(dinov2_dir), 112, 8, hidden_layer=hidden_layer)
    frames = np.random.default_rng(7).integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    pixels = enc.preprocess(frames)
    ours = enc.encode(pixels)
    full = Dinov2Model.from_pretrained(dinov2_dir).eval()
    normalised = enc.processor(images=pixels, return_tensors="pt", size={"shortest_edge": 112},
                               crop_size={"height": 112, "width": 112})["pixel_values"]
    with torch.inference_mode():
        ref = full(pixel_values=normalised, output_hidden_states=True).hidden_states[hidden_layer][:, 1:]
    assert ours.shape == (2, 64, 384) and enc.layout.as_dict()["total"] == 8 + 64
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-4, atol=2e-4)
    settings = enc.settings()
    assert settings["backbone"] == "Dinov2Model" and settings["random_weights"] is False
    assert settings["image_mean"] == pytest.approx([0.485, 0.456, 0.406])


def test_fold_rejects_a_padded_convolution() -> None:
    import torch

    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    with pytest.raises(ValueError, match="padded"):
        fold_pixel_normalization(conv, [0.5] * 3, [0.2] * 3, 1 / 255)


def test_load_equals_decode_then_preprocess(tiny224: Path, corpus: dict) -> None:
    """The RGBA fast path (decode + resize per frame) gives exactly the RGB path's pixels."""
    import torch

    enc = VisionPatchEncoder(str(tiny224), 224, 8)
    path = str(corpus["root"] / "dia0_utt2.mp4")
    idx = [0, 3, 4, 17]
    fast = enc.load(path, idx, "pyav", threaded=False)
    assert torch.equal(fast, enc.preprocess(decode_frames(path, idx, "pyav")))
    with pytest.raises(IndexError):
        enc.load(path, [0, 10_000], "pyav")
    # the other paths (decord, or the processor's crop) decode first, then preprocess
    assert torch.equal(enc.load(path, idx, "decord"), enc.preprocess(decode_frames(path, idx, "decord")))
    crop = VisionPatchEncoder(str(tiny224), 224, 8, resize="crop")
    assert torch.equal(crop.load(path, idx, "pyav"), crop.preprocess(decode_frames(path, idx, "pyav")))


def test_decoders_agree(corpus: dict, tmp_path: Path) -> None:
    path = str(corpus["root"] / "dia0_utt2.mp4")
    idx = [0, 5, 6, 20, 33]
    np.testing.assert_array_equal(decode_frames(path, idx, "pyav"), decode_frames(path, idx, "decord"))
    turned = tmp_path / "turned.mp4"  # a display-rotation tag, as phones write: both turn it upright
    run_ffmpeg(["-display_rotation", "90", "-i", path, "-c", "copy", str(turned)])
    upright = decode_frames(str(turned), idx, "pyav")
    assert upright.shape[1:3] == decode_frames(path, idx, "pyav").shape[2:0:-1]
    np.testing.assert_array_equal(upright, decode_frames(str(turned), idx, "decord"))


# ------------------------------------------------------------------------------- extraction
@pytest.mark.parametrize("size,fixture,n_patches", [(224, "tiny224", 256), (336, "tiny336", 576)])
def test_token_shapes_both_resolutions(corpus: dict, request: pytest.FixtureRequest, size: int,
                                       fixture: str, n_patches: int) -> None:
    model = request.getfixturevalue(fixture)
    enc = VisionPatchEncoder(str(model), size, 24)
    plans, _ = plan_samples(corpus["clips"], corpus["segments"], 24, "segments", corpus["root"])
    items = list(extract_tokens(plans, enc, 16, progress=False))
    assert {i.plan.sample_id for i in items} == {"train/dia0_utt0", "train/dia0_utt1", "train/dia0_utt2"}
    for item in items:
        assert item.tokens.shape == (24 + n_patches, 16) and item.tokens.dtype == np.float16


def test_pooling_equals_numpy_on_the_same_patch_tokens(corpus: dict, tiny224: Path) -> None:
    t_frames = 40
    enc = VisionPatchEncoder(str(tiny224), 224, t_frames)
    plans, _ = plan_samples(corpus["clips"], corpus["segments"], t_frames, "segments", corpus["root"])
    plans = [p for p in plans if p.sample_id.startswith("train/dia0")]
    got = {i.plan.sample_id: i.tokens for i in extract_tokens(plans, enc, 7, progress=False)}
    for plan in plans:
        # decode each picked frame on its own and run the model on the frames in sample order
        frames = np.concatenate([decode_frames(src, [k]) for src, k in plan.picks])
        feats = enc.encode(enc.preprocess(frames)).astype(np.float32)  # (t, N, D)
        t = len(plan.picks)
        temporal = np.zeros((t_frames, feats.shape[2]), np.float32)
        temporal[:t] = np.mean(feats, axis=1)
        expected = np.concatenate([temporal, np.mean(feats, axis=0)]).astype(np.float16)
        np.testing.assert_allclose(got[plan.sample_id].astype(np.float32), expected.astype(np.float32),
                                   rtol=2e-3, atol=1e-4)


def test_segments_map_positions_to_source_frames(corpus: dict) -> None:
    plans, _ = plan_samples(corpus["clips"], corpus["segments"], 40, "segments", corpus["root"])
    plan = next(p for p in plans if p.sample_id == "train/dia0_utt2")
    assert plan.n_frames_clip == 30 + 22 + 31
    assert plan.positions == uniform_frame_indices(83, 40)
    for pos, (src, k) in zip(plan.positions, plan.picks):
        if pos < 30:
            assert src.endswith("dia0_utt0.mp4") and k == pos
        elif pos < 52:
            assert src.endswith("dia0_utt1.mp4") and k == 4 + pos - 30
        else:
            assert src.endswith("dia0_utt2.mp4") and k == 3 + pos - 52


def test_a_resampled_segment_maps_positions_through_its_source_frames(corpus: dict) -> None:
    """Where the dataset stage resampled a clip's frame rate, segment frame k shows source frame
    source_frames[k] (repeated or skipped source frames): the plan picks exactly that frame."""
    segments = corpus["segments"].copy()
    held = [4, 4, 5, 7, 7, 8] + list(range(9, 25))  # 22 frames, as the segment of utterance 1
    segments.at[1, "source_frames"] = held
    plans, _ = plan_samples(corpus["clips"], segments, 83, "segments", corpus["root"])
    plan = next(p for p in plans if p.sample_id == "train/dia0_utt2")
    picked = [(pos, src, k) for pos, (src, k) in zip(plan.positions, plan.picks) if 30 <= pos < 52]
    assert len(picked) > 15 and all(src.endswith("dia0_utt1.mp4") and k == held[pos - 30]
                                    for pos, src, k in picked)
    segments.at[1, "source_frames"] = held[:-1]  # disagrees with the clip's n_frames
    _, excluded = plan_samples(corpus["clips"], segments, 83, "segments", corpus["root"])
    assert excluded["train/dia0_utt2"].startswith("corrupt: a segment of the sample is missing")


def test_short_clip_is_zero_padded_after_real_frames(corpus: dict, tiny224: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.parquet"
    extract_shard(str(corpus["clips_path"]), str(corpus["segments_path"]), 0, 1,
                  cfg(tiny224, num_frames=40), str(out), base_dir=str(corpus["root"]), progress=False)
    table = read_table(out).set_index("sample_id")
    tokens = load_tokens(out)
    short = "train/dia0_utt0"  # 30 frames < T = 40
    assert table.loc[short, "n_frames_sampled"] == 30 and table.loc[short, "padding"] == PADDING_ZEROS_AFTER
    assert list(table.loc[short, "frame_positions"]) == uniform_frame_indices(30, 40)
    assert not tokens[short][30:40].any()  # padded temporal tokens are exact zeros
    assert np.abs(tokens[short][:30].astype(np.float32)).sum(axis=1).min() > 0
    long_ = "train/dia0_utt2"  # 83 frames ≥ T
    assert table.loc[long_, "n_frames_sampled"] == 40 and table.loc[long_, "padding"] == PADDING_NONE
    assert np.abs(tokens[long_][:40].astype(np.float32)).sum(axis=1).min() > 0


def test_corrupt_and_quarantined_samples_are_excluded_and_counted(corpus: dict, tiny224: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "clip.parquet"
    stats = extract_shard(str(corpus["clips_path"]), str(corpus["segments_path"]), 0, 1,
                          cfg(tiny224), str(out), base_dir=str(corpus["root"]), progress=False)
    assert set(load_tokens(out)) == {"train/dia0_utt0", "train/dia0_utt1", "train/dia0_utt2"}
    assert stats["excluded"]["train/dia1_utt2"].startswith("quarantined")
    assert stats["excluded"]["train/dia1_utt1"].startswith("decode failed")
    assert "dia1_utt1.mp4" in stats["excluded"]["train/dia1_utt1"]
    quality = video_quality([stats], read_settings(out), n_clips=5)
    assert quality["with_features"] == 3 and quality["excluded"]["count"] == 2
    assert quality["excluded"]["by_reason"] == {"decode failed": 1, "quarantined": 1}
    assert quality["accounted"] and quality["random_weights"] is True


def test_metadata_and_partial_loading(corpus: dict, tiny224: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.parquet"
    extract_shard(str(corpus["clips_path"]), str(corpus["segments_path"]), 0, 1, cfg(tiny224),
                  str(out), base_dir=str(corpus["root"]), progress=False)
    settings = read_settings(out)
    assert settings["model"] == str(tiny224) and settings["random_weights"] is True
    assert settings["hidden_layer"] == -2 and settings["image_size"] == 224
    assert read_video_layout(out) == TokenLayout(40, 256, 16)
    some = load_tokens(out, ["train/dia0_utt1", "train/nope"])
    assert list(some) == ["train/dia0_utt1"] and some["train/dia0_utt1"].shape == (296, 16)
    assert load_tokens(tmp_path, ["train/dia0_utt1"])["train/dia0_utt1"].shape == (296, 16)  # a directory


def test_rerun_is_bit_identical_and_sharding_keeps_tokens(corpus: dict, tiny224: Path,
                                                                  tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for out in (a, b):
        extract_shard(str(corpus["clips_path"]), str(corpus["segments_path"]), 0, 1, cfg(tiny224),
                      str(out), base_dir=str(corpus["root"]), progress=False)
    assert a.read_bytes() == b.read_bytes()
    # two shards hold the same samples' tokens as one shard
    parts = [tmp_path / f"s{k}.parquet" for k in range(2)]
    for k, out in enumerate(parts):
        extract_shard(str(corpus["clips_path"]), str(corpus["segments_path"]), k, 2, cfg(tiny224),
                      str(out), base_dir=str(corpus["root"]), progress=False)
    whole = load_tokens(a)
    split = {**load_tokens(parts[0]), **load_tokens(parts[1])}
    assert set(whole) == set(split)
    for sid in whole:
        np.testing.assert_allclose(whole[sid].astype(np.float32), split[sid].astype(np.float32),
                                   rtol=2e-3, atol=1e-4)


def test_failed_source_does_not_stop_other_samples(corpus: dict, tiny224: Path) -> None:
    enc = VisionPatchEncoder(str(tiny224), 224, 16)
    plans, _ = plan_samples(corpus["clips"], corpus["segments"], 16, "segments", corpus["root"])
    broken = copy.deepcopy(plans)
    stats = ExtractStats()
    done = [i.plan.sample_id for i in extract_tokens(broken, enc, 5, progress=False, stats=stats)]
    assert sorted(done) == ["train/dia0_utt0", "train/dia0_utt1", "train/dia0_utt2"]
    assert list(stats.failed) == ["train/dia1_utt1"]
    assert stats.frames_encoded == len({p for plan in plans for p in plan.picks}) - len(
        {p for p in plans[-1].picks if p[0].endswith("dia1_utt1.mp4")})


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs /proc/self/mem")
def test_an_io_error_reading_a_source_fails_the_shard_not_its_samples(corpus: dict, tiny224: Path,
                                                                      tmp_path: Path) -> None:
    """A read that fails with EIO (here: the kernel's, from /proc/self/mem) is the machine's
    fault: the shard fails naming it, instead of quarantining the samples that use the source."""
    (tmp_path / "eio.mp4").symlink_to("/proc/self/mem")
    enc = VisionPatchEncoder(str(tiny224), 224, 16)
    plans, _ = plan_samples(corpus["clips"], corpus["segments"], 16, "segments", corpus["root"])
    plans[0].picks = [(str(tmp_path / "eio.mp4"), k) for _, k in plans[0].picks]
    with pytest.raises(EnvironmentFault, match="Input/output error: .*eio.mp4"):
        list(extract_tokens(plans, enc, 5, progress=False))


def test_image_size_mismatch_is_a_clear_error(tiny224: Path) -> None:
    with pytest.raises(ValueError, match="image_size=336"):
        VisionPatchEncoder(str(tiny224), 336, 10)


def test_config_section_is_validated() -> None:
    import yaml

    from ecem.config import ConfigError, validate_config
    from tests.helpers import REPO

    schemas = REPO / "workflow" / "schemas" / "config"
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate_config(config, schemas)
    bad = copy.deepcopy(config)
    bad["features"]["clip"]["num_frame"] = bad["features"]["clip"].pop("num_frames")
    with pytest.raises(ConfigError, match="features.clip.num_frame"):
        validate_config(bad, schemas)
    bad = copy.deepcopy(config)
    bad["features"]["clip"]["image_size"] = 7
    with pytest.raises(ConfigError, match="features.clip.image_size"):
        validate_config(bad, schemas)


def test_encoder_reads_a_full_clip_checkpoint_like_the_hub_one(tmp_path: Path) -> None:
    """openai/clip-vit-large-patch14 is a whole CLIPModel (text + vision); the encoder must pick
    the vision tower's weights out of it. Same layout here with a tiny random CLIPModel."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    cfg = CLIPConfig(text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                  "num_attention_heads": 2},
                     vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 3,
                                    "num_attention_heads": 2, "image_size": 224, "patch_size": 14},
                     projection_dim=8)
    torch.manual_seed(3)
    full = CLIPModel(cfg).eval()
    full.save_pretrained(tmp_path)
    CLIPImageProcessor().save_pretrained(tmp_path)
    enc = VisionPatchEncoder(str(tmp_path), 224, 8)
    assert not enc.random_weights  # no marker: a "real" checkpoint as far as the metadata goes
    frames = np.random.default_rng(4).integers(0, 256, (2, H, W, 3), dtype=np.uint8)
    pixels = enc.preprocess(frames)
    with torch.inference_mode():
        ref = full.vision_model(pixel_values=_processor_pixels(enc, pixels),
                                output_hidden_states=True).hidden_states[-2][:, 1:]
    np.testing.assert_allclose(enc.encode(pixels), ref.numpy(), rtol=1e-4, atol=1e-5)
