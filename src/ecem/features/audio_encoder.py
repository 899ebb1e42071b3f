"""Speech encoders behind the audio tokens: audio (16 kHz mono float32) → encoder frames.

Every encoder gives, per audio, only the frames that cover real audio, `(n, D)` float32. Audio
longer than one 30 s window is cut into consecutive windows, each encoded alone (Whisper's
encoder sees at most 30 s; the others are bounded the same way to bound memory), and their
frames concatenated.

- :class:`CT2WhisperEncoder` — the encoder of a CTranslate2 Whisper model, such as the bundled
  `tiny.en` the transcription stage ships (the offline default). Each window is zero-padded to
  30 s *as audio* before the log-mel (as Whisper and whisperx do), encoded to 1500 frames of
  20 ms, and cut to `ceil(samples / 320)` frames.
- :class:`TransformersAudioEncoder` — any transformers speech encoder by hub id or directory:
  a Whisper checkpoint (its encoder only, same padding and cut as above) or a frame encoder such
  as HuBERT / wav2vec2 / WavLM (AutoModel + AutoFeatureExtractor, each window unpadded).

Segments are encoded one by one (a window never mixes two segments), so a segment's frames do
not depend on its neighbours and each segment is encoded once however many prefixes use it.
Packing a dialogue's short segments into shared 30 s windows would cost fewer Whisper windows
but make a segment's frames depend on what shares its window; see README "Audio features".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ecem import model_refs
from ecem.audio_decode import AUDIO_SAMPLE_RATE
from ecem.features.audio import real_frames

log = logging.getLogger(__name__)

WINDOW_S = 30  # Whisper's input window; every encoder is fed at most this much at once
WINDOW_SAMPLES = WINDOW_S * AUDIO_SAMPLE_RATE
WHISPER_SAMPLES_PER_FRAME = 320  # hop 160 × the encoder's stride-2 conv: 20 ms per frame


class AudioEncoder(Protocol):
    """What the audio stage needs from an encoder."""

    frame_s: float  # seconds of audio per encoder frame
    encode_s: float  # seconds spent in the model so far
    windows_encoded: int

    @property
    def hidden_size(self) -> int: ...

    def encode(self, audios: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(n_i, D) float32 frames covering the real audio of each input."""
        ...

    def settings(self) -> dict[str, Any]:
        """What the feature file's metadata records about the encoder."""
        ...


def split_windows(audio: np.ndarray, window: int = WINDOW_SAMPLES) -> list[np.ndarray]:
    """Consecutive windows of at most `window` samples ([] for empty audio)."""
    return [audio[k:k + window] for k in range(0, audio.size, window)]


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for k in range(0, len(items), max(1, size)):
        yield items[k:k + max(1, size)]


class _WindowedEncoder:
    """Shared by the encoders: cut audios into windows, batch windows, reassemble per audio."""

    frame_s = WHISPER_SAMPLES_PER_FRAME / AUDIO_SAMPLE_RATE
    batch_size = 1

    def __init__(self) -> None:
        self.encode_s = 0.0
        self.windows_encoded = 0

    def _encode_windows(self, windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    @cached_property
    def hidden_size(self) -> int:
        """D, read off one encoded second of silence (a CTranslate2 model does not state it)."""
        return int(self._encode_windows([np.zeros(AUDIO_SAMPLE_RATE, np.float32)])[0].shape[1])

    def encode(self, audios: Sequence[np.ndarray]) -> list[np.ndarray]:
        owners: list[int] = []
        windows: list[np.ndarray] = []
        for i, audio in enumerate(audios):
            for w in split_windows(np.asarray(audio, dtype=np.float32)):
                owners.append(i)
                windows.append(w)
        frames: list[np.ndarray] = []
        start = time.perf_counter()
        for batch in _batches(windows, self.batch_size):
            frames.extend(self._encode_windows(batch))
        self.encode_s += time.perf_counter() - start
        self.windows_encoded += len(windows)
        parts: list[list[np.ndarray]] = [[] for _ in audios]
        for i, f in zip(owners, frames):
            parts[i].append(f)
        return [np.concatenate(p) if p else np.zeros((0, self.hidden_size), np.float32) for p in parts]


class CT2WhisperEncoder(_WindowedEncoder):
    """The encoder half of a CTranslate2 Whisper model (`bundled:tiny.en` or a converted dir)."""

    def __init__(self, model: str, device: str = "cpu", compute_type: str = "int8", threads: int = 1,
                 batch_size: int = 8) -> None:
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        super().__init__()
        self.model_id = model
        self.path = model_refs.resolve_whisper(model)
        self.device, self.compute_type = device, compute_type
        self.batch_size = int(batch_size)
        kind, _, index = device.partition(":")
        self.model = ctranslate2.models.Whisper(self.path, device=kind, device_index=int(index or 0),
                                                compute_type=compute_type, intra_threads=max(1, threads))
        self.features = FeatureExtractor(feature_size=self.model.n_mels)
        self._ct2 = ctranslate2
        log.info("audio encoder: CTranslate2 Whisper encoder %s (%s, %s, %d mels)", self.path, device,
                 compute_type, self.model.n_mels)

    def log_mel(self, window: np.ndarray) -> np.ndarray:
        """(n_mels, 3000) log-mel of one window zero-padded to 30 s (Whisper's own input)."""
        mel = self.features(window, padding=WINDOW_SAMPLES - window.size)
        return mel[:, : WINDOW_SAMPLES // self.features.hop_length]

    def _encode_windows(self, windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        ct2 = self._ct2
        feats = np.ascontiguousarray(np.stack([self.log_mel(w) for w in windows]), dtype=np.float32)
        out = self.model.encode(ct2.StorageView.from_array(feats))
        if out.dtype != ct2.DataType.float32:
            out = out.to(ct2.DataType.float32)
        hidden = np.array(out.to_device(ct2.Device.cpu))
        return [hidden[i, : real_frames(w.size, WHISPER_SAMPLES_PER_FRAME)].copy()
                for i, w in enumerate(windows)]

    def settings(self) -> dict[str, Any]:
        return {"model": self.model_id, "model_path": self.path, "backend": "ctranslate2",
                "architecture": "whisper-encoder", "random_weights": False,
                "model_card": {"model": self.model_id, "source": self.path},
                "compute_type": self.compute_type, "device": self.device.split(":")[0],
                "n_mels": int(self.model.n_mels)}


class TransformersAudioEncoder(_WindowedEncoder):
    """A transformers speech encoder: Whisper (encoder only) or a HuBERT/wav2vec2-style model."""

    def __init__(self, model: str, device: str = "cpu", compute_type: str = "float32",
                 batch_size: int = 8) -> None:
        import torch
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, WhisperModel

        super().__init__()
        self.model_id = model
        self.path = model_refs.location(model)
        self.device, self.compute_type = device, compute_type
        self.batch_size = int(batch_size)
        dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16}
        self.dtype = dtypes.get(compute_type, torch.float32) if device.startswith("cuda") else torch.float32
        config = AutoConfig.from_pretrained(self.path)
        self.architecture = str(config.model_type)
        self.processor = AutoFeatureExtractor.from_pretrained(self.path)
        self.whisper = self.architecture == "whisper"
        if self.whisper:
            self.model = WhisperModel.from_pretrained(self.path, dtype=self.dtype).get_encoder()
        else:
            self.model = AutoModel.from_pretrained(self.path, dtype=self.dtype)
            self.frame_s = float(np.prod(config.conv_stride)) / AUDIO_SAMPLE_RATE
        self.model.to(device).eval()
        self._hidden_size = int(config.d_model if self.whisper else config.hidden_size)
        self.card = model_refs.model_card(self.path)
        self._torch = torch
        log.info("audio encoder: transformers %s %s (%s, %s)%s", self.architecture, self.path, device,
                 self.dtype, " with RANDOM weights" if self.card.get("random_weights") else "")

    @property
    def hidden_size(self) -> int:
        return self._hidden_size

    def _encode_windows(self, windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            if self.whisper:  # pads each window to 30 s of audio, as Whisper does
                feats = self.processor(list(windows), sampling_rate=AUDIO_SAMPLE_RATE, return_tensors="pt")
                x = feats.input_features.to(self.device, self.dtype)
                hidden = self.model(input_features=x).last_hidden_state.float().cpu().numpy()
                return [hidden[i, : real_frames(w.size, WHISPER_SAMPLES_PER_FRAME)].copy()
                        for i, w in enumerate(windows)]
            out = []
            for w in windows:  # one at a time: no padding, so the frames are the audio's own
                feats = self.processor(w, sampling_rate=AUDIO_SAMPLE_RATE, return_tensors="pt")
                x = feats.input_values.to(self.device, self.dtype)
                out.append(self.model(input_values=x).last_hidden_state[0].float().cpu().numpy())
            return out

    def settings(self) -> dict[str, Any]:
        return {"model": self.model_id, "model_path": str(self.path), "backend": "transformers",
                "architecture": self.architecture,
                "random_weights": bool(self.card.get("random_weights", False)),
                "model_card": {k: self.card[k] for k in ("model", "stand_in_for", "source") if k in self.card}
                or {"model": self.model_id},
                "compute_type": str(self.dtype).removeprefix("torch."), "device": self.device.split(":")[0]}


def is_ctranslate2_dir(path: str | Path) -> bool:
    """A converted CTranslate2 model directory (its weights in `model.bin`)."""
    return (Path(path) / "model.bin").is_file()


def load_encoder(cfg: Mapping[str, Any], device: str, threads: int = 1) -> AudioEncoder:
    """The encoder `features.audio` names: `bundled:tiny.en` or a CTranslate2 directory →
    :class:`CT2WhisperEncoder`; any other hub id or directory → :class:`TransformersAudioEncoder`."""
    model = str(cfg["model"])
    if model_refs.is_bundled(model) or is_ctranslate2_dir(model_refs.resolve_whisper(model)):
        return CT2WhisperEncoder(model, device, str(cfg["compute_type"]), threads, int(cfg["batch_size"]))
    return TransformersAudioEncoder(model, device, str(cfg["compute_type"]), int(cfg["batch_size"]))
