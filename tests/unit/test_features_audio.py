"""Audio tokens (features/audio): pooling, the bundled Whisper encoder end to end on real ffmpeg
clips, bad and silent audio, and a tiny random transformers encoder through the same stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecem.artifacts import column_problems, read_metadata, read_table, write_table
from ecem.audio_decode import load_audio
from ecem.features import audio
from ecem.features.audio_encoder import CT2WhisperEncoder, TransformersAudioEncoder, split_windows
from ecem.features.audio_stage import extract_shard, run_gather
from ecem.ffmpeg import run_ffmpeg
from ecem.tokens import TokenStore

REPO = Path(__file__).resolve().parents[2]
CFG = {"model": "bundled:tiny.en", "num_tokens": 4, "device": "cpu", "compute_type": "int8",
       "silence_dbfs": -60.0, "shards": 1, "batch_size": 4}


def _clip(path, seconds, source="sine=frequency=440", audio=True):
    """A tiny mp4 segment as the render stage makes them: H.264 video + 16 kHz mono AAC."""
    args = ["-f", "lavfi", "-i", f"color=c=gray:s=32x32:r=10:d={seconds}"]
    if audio:
        opts = f":sample_rate=16000:duration={seconds}" if source.startswith("sine") else "=r=16000:cl=mono"
        args += ["-f", "lavfi", "-i", source + opts]
        args += ["-t", str(seconds), "-c:a", "aac", "-ar", "16000", "-ac", "1"]
    run_ffmpeg([*args, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)])
    return str(path)


def _tables(tmp, dialogues, quarantined=()):
    """segments.parquet + clips.parquet for `dialogues` = {dia: [(uid, path|None), ...]}: one
    sample per utterance, its prefix = the dialogue's segments up to it."""
    segs, clips = [], []
    for dia, parts in dialogues.items():
        for k, (uid, path) in enumerate(parts):
            segs.append({"meld_split": "train", "dialogue_id": dia, "utterance_id": uid,
                         "segment_path": path, "status": "ok" if path else "render_failed",
                         "status_detail": "" if path else "boom", "n_frames": 10, "render_fps": 10.0})
            clips.append({"sample_id": f"train/dia{dia}_utt{uid}", "meld_split": "train",
                          "dialogue_id": dia, "utterance_id": uid, "status": "ok", "status_detail": "",
                          "segments": [{"utterance_id": u, "first_frame": 0, "n_frames": 10}
                                       for u, _ in parts[:k + 1]]})
    for sid, dia, uid in quarantined:
        clips.append({"sample_id": sid, "meld_split": "train", "dialogue_id": dia, "utterance_id": uid,
                      "status": "quarantined", "status_detail": "target clip unusable (missing)",
                      "segments": []})
    import pandas as pd

    write_table(pd.DataFrame(segs), tmp / "segments.parquet", "dataset")
    write_table(pd.DataFrame(clips), tmp / "clips.parquet", "dataset")
    return str(tmp / "clips.parquet"), str(tmp / "segments.parquet")


def _reference_pool(frames, a):
    """Bin means written out directly: bin i = frames[floor(i*n/a):floor((i+1)*n/a)]."""
    n = len(frames)
    return np.stack([frames[i * n // a:(i + 1) * n // a].mean(0) for i in range(a)])


# -- pooling ---------------------------------------------------------------------------------------

def test_pool_bins_are_exact_means_over_near_equal_ranges():
    rng = np.random.default_rng(0)
    for n, a in [(10, 4), (8, 8), (1500, 32), (7, 3)]:
        frames = rng.standard_normal((n, 5)).astype(np.float32)
        tokens, padding = audio.temporal_pool(frames, a)
        assert padding == audio.PADDING_NONE and tokens.shape == (a, 5)
        np.testing.assert_allclose(tokens, _reference_pool(frames, a), rtol=1e-5, atol=1e-6)
    frames = np.arange(12, dtype=np.float32).reshape(6, 2)  # n=6, A=4: bins [0,1) [1,3) [3,4) [4,6)
    tokens, _ = audio.temporal_pool(frames, 4)
    np.testing.assert_allclose(tokens[:, 0], [0.0, 3.0, 6.0, 9.0])


def test_fewer_frames_than_tokens_pads_zero_rows_after():
    frames = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    tokens, padding = audio.temporal_pool(frames, 5)
    assert padding == audio.PADDING_ZEROS_AFTER
    np.testing.assert_array_equal(tokens[:2], frames)
    np.testing.assert_array_equal(tokens[2:], 0.0)
    with pytest.raises(ValueError):
        audio.temporal_pool(np.zeros((0, 2), np.float32), 3)


def test_prefix_pooling_from_shared_running_sums_equals_pooling_the_prefix():
    frames = np.random.default_rng(1).standard_normal((40, 3))
    csum = audio.cumulative(frames)
    for n in (3, 17, 40):
        np.testing.assert_allclose(audio.pool_prefix(csum, n, 4)[0], audio.temporal_pool(frames[:n], 4)[0],
                                   rtol=1e-5, atol=1e-6)


def test_frames_and_windows():
    assert audio.real_frames(16000, 320) == 50 and audio.real_frames(16001, 320) == 51
    assert [w.size for w in split_windows(np.zeros(16000 * 65, np.float32))] == [480000, 480000, 80000]
    assert audio.peak_dbfs(np.zeros(10, np.float32)) == float("-inf")
    assert abs(audio.peak_dbfs(np.full(4, 0.5, np.float32)) + 6.02) < 0.01


# -- the bundled tiny.en encoder through the stage ----------------------------------------------

@pytest.fixture(scope="module")
def ct2():
    return CT2WhisperEncoder("bundled:tiny.en", "cpu", "int8", threads=1, batch_size=4)


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audio")
    parts = [(0, _clip(tmp / "u0.mp4", 1.0, "sine=frequency=440")),
             (1, _clip(tmp / "u1.mp4", 0.7, "sine=frequency=1200")),
             (3, _clip(tmp / "u3.mp4", 0.5, "sine=frequency=300"))]
    return tmp, parts


def _direct_frames(ct2, path):
    """The encoder run by hand: log-mel of the audio zero-padded to 30 s → CTranslate2 encode →
    the frames covering the real audio."""
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor

    wave = load_audio(path)
    mel = FeatureExtractor(feature_size=80)(wave, padding=480000 - wave.size)[:, :3000]
    out = ct2.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], np.float32)))
    return np.array(out)[0, : int(np.ceil(wave.size / 320))]


def test_bundled_encoder_loads_offline(ct2):
    assert ct2.hidden_size == 384 and ct2.frame_s == 0.02


def test_sample_tokens_are_the_pooled_encoder_frames_of_its_prefix_in_order(ct2, dialogue, tmp_path):
    tmp, parts = dialogue
    clips, segments = _tables(tmp_path, {7: parts})
    stats = extract_shard(clips, segments, 0, 1, CFG, str(tmp_path / "a.parquet"), encoder=ct2)
    assert stats["with_features"] == 3 and not stats["excluded"]
    assert stats["segments"]["encoded"] == 3  # each segment once, not once per prefix
    table = read_table(tmp_path / "a.parquet").set_index("sample_id")
    direct = [_direct_frames(ct2, p) for _, p in parts]
    for k, (uid, _) in enumerate(parts):
        row = table.loc[f"train/dia7_utt{uid}"]
        got = np.frombuffer(row["tokens"], "<f2").reshape(row["shape"]).astype(np.float32)
        prefix = np.concatenate(direct[:k + 1])
        assert row["n_encoder_frames"] == len(prefix) and row["n_segments"] == k + 1
        assert abs(row["duration_s"] - sum(load_audio(p).size for _, p in parts[:k + 1]) / 16000) < 1e-9
        np.testing.assert_allclose(got, _reference_pool(prefix, 4), rtol=1e-2, atol=1e-2)
        if k:  # order matters: the same frames in reverse order pool differently
            reverse = np.concatenate(direct[:k + 1][::-1])
            assert not np.allclose(got, _reference_pool(reverse, 4), rtol=1e-2, atol=1e-2)
    meta = read_metadata(tmp_path / "a.parquet")
    assert meta["stage"] == "features/audio"
    s = meta["settings"]
    assert (s["num_tokens"], s["hidden_size"], s["frame_s"], s["random_weights"]) == (4, 384, 0.02, False)
    assert audio.read_audio_layout(tmp_path / "a.parquet") == (4, 384)


def test_silent_missing_and_corrupt_audio_quarantine_only_the_samples_needing_it(ct2, dialogue, tmp_path):
    tmp, parts = dialogue
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not an mp4 at all" * 20)
    silent = [(u, _clip(tmp_path / f"s{u}.mp4", 0.6, "anullsrc")) for u in (0, 1)]
    mute_then_loud = [(0, _clip(tmp_path / "m0.mp4", 0.6, audio=False)), (1, parts[1][1])]
    clips, segments = _tables(tmp_path, {
        1: silent, 2: [parts[0], (1, str(bad)), parts[2]], 3: mute_then_loud,
        4: [parts[0], (1, None)], 5: [parts[0], (1, str(tmp_path / "gone.mp4"))],
    }, quarantined=[("train/dia9_utt0", 9, 0)])
    shard = [str(tmp_path / "t.parquet"), str(tmp_path / "t.json")]
    stats = extract_shard(clips, segments, 0, 1, CFG, shard[0], encoder=ct2)
    (tmp_path / "t.json").write_text(json.dumps(stats))
    ex = stats["excluded"]
    assert ex["train/dia1_utt0"].startswith("no_audio:") and ex["train/dia1_utt1"].startswith("no_audio:")
    assert ex["train/dia3_utt0"].startswith("no_audio:")  # no audio stream at all
    assert ex["train/dia2_utt1"].startswith("corrupt:") and ex["train/dia2_utt3"].startswith("corrupt:")
    assert ex["train/dia4_utt1"].startswith("corrupt: segment status render_failed")
    assert ex["train/dia5_utt1"].startswith("missing:")
    assert ex["train/dia9_utt0"].startswith("quarantined:")
    ids = set(read_table(shard[0])["sample_id"])
    assert ids == {"train/dia2_utt0", "train/dia3_utt1", "train/dia4_utt0", "train/dia5_utt0"}
    row = read_table(shard[0]).set_index("sample_id").loc["train/dia3_utt1"]
    assert row["n_encoder_frames"] == len(_direct_frames(ct2, parts[1][1]))  # the mute segment adds none
    out = tmp_path / "features" / "audio.parquet"
    quality = tmp_path / "quality.json"
    run_gather([shard[0]], [shard[1]], clips, str(out), str(tmp_path / "features" / "audio.tokens.npy"),
               str(quality))
    q = json.loads(quality.read_text())
    assert q["accounted"] and q["samples"] == 12 and q["with_features"] == 4 and q["no_audio"] == 3
    assert q["excluded"]["by_reason"] == {"corrupt": 3, "missing": 1, "no_audio": 3, "quarantined": 1}
    store = TokenStore(out)
    assert set(store) == ids and store["train/dia2_utt0"].shape == (4, 384)
    contract = yaml.safe_load((REPO / "workflow/schemas/artifacts/columns.yaml").read_text())
    assert column_problems(out, contract["results/features/audio.parquet"]) == []


# -- transformers encoders (tiny random, built here) ----------------------------------------------

@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    out = tmp_path_factory.mktemp("tiny-whisper")
    torch.manual_seed(0)
    cfg = WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        num_mel_bins=80, max_source_positions=1500, vocab_size=64,
                        max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                        decoder_start_token_id=1)
    WhisperModel(cfg).save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    out = tmp_path_factory.mktemp("tiny-w2v2")
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8, 8, 8, 8, 8, 8, 8), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, do_stable_layer_norm=True,
                         feat_extract_norm="layer")
    Wav2Vec2Model(cfg).save_pretrained(out)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, return_attention_mask=True)
    extractor.save_pretrained(out)
    return str(out)


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("which", ["tiny_whisper", "tiny_wav2vec2"])
def test_transformers_encoder_through_the_stage(which, request, dialogue, tmp_path):
    import torch
    from transformers import AutoFeatureExtractor, AutoModel, WhisperModel

    path = request.getfixturevalue(which)
    tmp, parts = dialogue
    clips, segments = _tables(tmp_path, {7: parts[:2]})
    cfg = {**CFG, "model": path, "compute_type": "float32", "num_tokens": 3}
    enc = TransformersAudioEncoder(path, "cpu", "float32", batch_size=2)
    stats = extract_shard(clips, segments, 0, 1, cfg, str(tmp_path / "a.parquet"), encoder=enc)
    assert stats["with_features"] == 2
    processor = AutoFeatureExtractor.from_pretrained(path)
    direct = []
    with torch.inference_mode():
        for _, p in parts[:2]:
            wave = load_audio(p)
            if which == "tiny_whisper":
                model = WhisperModel.from_pretrained(path).get_encoder().eval()
                x = processor(wave, sampling_rate=16000, return_tensors="pt").input_features
                direct.append(model(x).last_hidden_state[0, : int(np.ceil(wave.size / 320))].numpy())
            else:
                model = AutoModel.from_pretrained(path).eval()
                x = processor(wave, sampling_rate=16000, return_tensors="pt").input_values
                direct.append(model(x).last_hidden_state[0].numpy())
    row = read_table(tmp_path / "a.parquet").set_index("sample_id").loc["train/dia7_utt1"]
    got = np.frombuffer(row["tokens"], "<f2").reshape(row["shape"]).astype(np.float32)
    prefix = np.concatenate(direct)
    assert row["n_encoder_frames"] == len(prefix) and tuple(row["shape"]) == (3, 16)
    np.testing.assert_allclose(got, _reference_pool(prefix, 3), rtol=1e-2, atol=2e-3)
    s = audio.read_settings(tmp_path / "a.parquet")
    assert s["backend"] == "transformers" and s["hidden_size"] == 16 and abs(s["frame_s"] - 0.02) < 1e-9
