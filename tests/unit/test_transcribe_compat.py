"""The torchaudio/pyannote compatibility module: whisperx imports through it and the VAD
checkpoint bundled in the whisperx wheel loads under torch's weights_only=True."""

from __future__ import annotations

from pathlib import Path

import torch


def test_whisperx_imports_through_compat():
    from ecem.transcribe import compat

    wx = compat.whisperx()
    import torchaudio

    assert hasattr(torchaudio, "AudioMetaData") and callable(torchaudio.list_audio_backends)
    import whisperx.asr  # noqa: F401 - the imports that failed before the fix
    import whisperx.vads  # noqa: F401
    from pyannote.audio.core.io import Audio

    assert Audio().backend in torchaudio.list_audio_backends()
    assert callable(wx.load_model)
    compat.apply()  # idempotent


def test_bundled_vad_checkpoint_loads_weights_only():
    from ecem.transcribe import compat

    wx = compat.whisperx()
    ckpt = Path(wx.__file__).parent / "assets" / "pytorch_model.bin"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert "state_dict" in state and any(k.startswith("sincnet") for k in state["state_dict"])
    specs = state["pyannote.audio"]["specifications"]
    assert type(specs).__name__ == "Specifications"
