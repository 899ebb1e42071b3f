"""Make whisperx 3.7.2 (with pyannote.audio 3.4) importable and its bundled VAD loadable on
torch/torchaudio 2.11. Import this module before anything imports whisperx or pyannote.

Two things broke, and this module fixes exactly those, nothing else:

1. torchaudio 2.9 removed `torchaudio.AudioMetaData` and `torchaudio.list_audio_backends`.
   pyannote.audio 3.x uses the first as a type annotation at import time and calls the second
   when it builds its `Audio` reader. We only ever hand pyannote in-memory waveforms, so a
   stand-in record type and a backend list are enough; they are added only when missing.
2. torch >= 2.6 loads checkpoints with `weights_only=True`. whisperx's bundled pyannote
   segmentation checkpoint (`whisperx/assets/pytorch_model.bin`) pickles a few omegaconf and
   pyannote classes, so loading it raises `UnpicklingError`. We allow-list exactly the classes
   that checkpoint contains with `torch.serialization.add_safe_globals` (the trusted file ships
   inside the whisperx wheel); arbitrary code in other checkpoints stays blocked.

`apply()` is idempotent and runs on import; `whisperx()` returns the module imported after it.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from types import ModuleType

log = logging.getLogger(__name__)

_APPLIED = False


@dataclasses.dataclass
class AudioMetaData:
    """Stand-in for the record `torchaudio.info` returned before torchaudio 2.9."""

    sample_rate: int
    num_frames: int
    num_channels: int
    bits_per_sample: int = 0
    encoding: str = "UNKNOWN"


def _list_audio_backends() -> list[str]:
    """pyannote picks 'soundfile' when listed, else the first entry; it is unused for waveforms."""
    return ["ffmpeg"]


def _patch_torchaudio() -> None:
    import torchaudio

    if not hasattr(torchaudio, "AudioMetaData"):
        torchaudio.AudioMetaData = AudioMetaData
    if not hasattr(torchaudio, "list_audio_backends"):
        torchaudio.list_audio_backends = _list_audio_backends


def _allow_vad_checkpoint_classes() -> None:
    import collections
    import typing

    import torch
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.listconfig import ListConfig
    from omegaconf.nodes import AnyNode
    from pyannote.audio.core.model import Introspection
    from pyannote.audio.core.task import Problem, Resolution, Specifications

    torch.serialization.add_safe_globals([
        ContainerMetadata, Metadata, ListConfig, AnyNode, typing.Any, collections.defaultdict,
        list, dict, int, Introspection, Problem, Resolution, Specifications,
        torch.torch_version.TorchVersion,
    ])


def apply() -> None:
    """Install both fixes (safe to call many times)."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_torchaudio()  # must precede the first pyannote import below
    _allow_vad_checkpoint_classes()
    _APPLIED = True


def whisperx() -> ModuleType:
    """The `whisperx` package, imported with the fixes in place."""
    apply()
    return importlib.import_module("whisperx")


apply()
