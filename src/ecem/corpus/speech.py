"""Real speech for the demo corpus: eSpeak NG through its C API.

The `espeakng-loader` wheel ships `libespeak-ng.so` and its voice data but no command-line
program, so we drive the library with ctypes in synchronous mode and collect the 16-bit PCM
samples it hands to the synthesis callback. The library keeps global state, so calls are
serialised with a lock and the engine is initialised once per process.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_lock = threading.Lock()
_engine: tuple[ctypes.CDLL, int] | None = None
_chunks: list[np.ndarray] = []


@_CALLBACK
def _collect(wav: ctypes.POINTER(ctypes.c_short), n: int, _events: int) -> int:  # type: ignore[valid-type]
    if n > 0 and wav:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
    return 0  # 0 = continue synthesis


def _load_engine() -> tuple[ctypes.CDLL, int]:
    global _engine
    if _engine is None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
        lib.espeak_Initialize.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, 0)
        if rate <= 0:
            raise RuntimeError("eSpeak NG failed to initialise (espeak_Initialize returned %d)" % rate)
        lib.espeak_SetSynthCallback(_collect)
        _engine = (lib, rate)
    return _engine


def synthesize(text: str, voice: str = "en-us", words_per_minute: int = 160) -> tuple[np.ndarray, int]:
    """Speak `text`; return (mono int16 samples, sample rate in Hz)."""
    with _lock:
        lib, rate = _load_engine()
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice named {voice!r}")
        lib.espeak_SetParameter(_ESPEAK_RATE, int(words_per_minute), 0)
        _chunks.clear()
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
        )
        if status != 0:
            raise RuntimeError(f"eSpeak NG could not synthesise {text!r} (error {status})")
        lib.espeak_Synchronize()
        samples = np.concatenate(_chunks) if _chunks else np.zeros(0, dtype=np.int16)
        _chunks.clear()
    return samples.astype(np.int16), rate
