"""Batched WhisperX transcription with the bundled tiny.en model on real eSpeak NG speech."""

from __future__ import annotations

import dataclasses
import math
import wave
from pathlib import Path

import numpy as np
import pytest

from ecem.corpus.speech import synthesize
from ecem.transcribe.asr import (SAMPLE_RATE, AlignerUnavailableError, AsrSettings, Transcriber,
                                 load_audio, resolve_model)
from ecem.transcribe.wer import wer

SENTENCES = ["Look what I found in the fridge.", "I am sorry, I forgot about that."]


def _wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(samples.astype(np.int16).tobytes())
    return path


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(AsrSettings(model="bundled:tiny.en", batch_size=2, beam_size=2, threads=2))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[np.ndarray]:
    """Two spoken sentences (with 0.4 s of silence before), decoded from 22.05 kHz WAV files,
    then pure silence and faint noise."""
    tmp = tmp_path_factory.mktemp("asr")
    audios = []
    for i, text in enumerate(SENTENCES):
        pcm, rate = synthesize(text)
        pcm = np.concatenate([np.zeros(int(0.4 * rate), np.int16), pcm, np.zeros(int(0.3 * rate), np.int16)])
        audios.append(load_audio(_wav(tmp / f"s{i}.wav", pcm, rate)))
    rng = np.random.default_rng(0)
    audios.append(np.zeros(2 * SAMPLE_RATE, np.float32))
    audios.append((rng.standard_normal(2 * SAMPLE_RATE) * 1e-4).astype(np.float32))
    return audios


@pytest.fixture(scope="module")
def results(transcriber, clips):
    return transcriber.transcribe(clips)  # batch_size 2


def test_load_audio_resamples_to_16k(clips):
    pcm, rate = synthesize(SENTENCES[0])
    expected_s = 0.4 + pcm.size / rate + 0.3
    assert abs(clips[0].size / SAMPLE_RATE - expected_s) < 0.05
    assert clips[0].dtype == np.float32 and 0.05 < np.abs(clips[0]).max() <= 1.0


def test_speech_transcribed_silence_is_no_speech(results, clips):
    assert len(results) == len(clips)
    for res, text, audio in zip(results, SENTENCES, clips):
        assert res.status == "ok", res.status_detail
        assert wer(text, res.text) <= 0.35, res.text
        assert 0.0 < res.confidence <= 1.0 and res.n_tokens > 0
        assert 0.0 <= res.no_speech_prob < 0.6
        seg = res.segments[0]
        # the VAD region lies inside the clip and its speech starts near the 0.4 s pad
        assert 0.0 <= seg["start"] < 0.45 and seg["end"] <= audio.size / SAMPLE_RATE + 1e-6
        assert seg["kept"] and res.words == []  # no aligner configured
    for res in results[2:]:
        assert res.status == "no_speech" and res.text == "" and math.isnan(res.confidence)
        assert res.status_detail


def test_batching_does_not_change_results(transcriber, clips, results):
    batched = results[:2]
    transcriber.settings = dataclasses.replace(transcriber.settings, batch_size=1)
    try:
        single = transcriber.transcribe(clips[:2])
    finally:
        transcriber.settings = dataclasses.replace(transcriber.settings, batch_size=2)
    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.avg_logprob for r in batched] == pytest.approx([r.avg_logprob for r in single], abs=1e-3)


def test_align_without_aligner_fails_clearly(tmp_path):
    settings = AsrSettings(beam_size=1, align=True, align_model=str(tmp_path / "no-such-wav2vec2"))
    with pytest.raises(AlignerUnavailableError, match="transcribe.align"):
        Transcriber(settings)


def test_resolve_model(tmp_path):
    bundled = Path(resolve_model("bundled:tiny.en"))
    assert (bundled / "model.bin").is_file() and (bundled / "tokenizer.json").is_file()
    assert resolve_model(str(tmp_path)) == str(tmp_path.resolve())
    assert resolve_model("large-v2") == "large-v2"
    with pytest.raises(ValueError, match="bundled"):
        resolve_model("bundled:huge")
