"""Input and params functions of the FAME-Net rules (workflow/rules/fame.smk), kept out of the
.smk file: which upstream artifacts an experiment needs follows from its modalities."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecem.modalities import Modalities
from ecem.tokens import token_array_path


def example_inputs(modalities: Modalities, paths: Mapping[str, str]) -> dict[str, Any]:
    """Inputs of rule fame_examples: only the artifacts the experiment's modalities use (`paths`
    names them: annotations, clips, utterances, features, audio, faces, transcripts)."""
    wanted = ["annotations", "clips", "utterances"]
    if modalities.video:
        wanted.append("features")
    if modalities.audio:
        wanted.append("audio")
    if modalities.face:
        wanted.append("faces")
    if modalities.reads_asr:
        wanted.append("transcripts")
    return {name: paths[name] for name in wanted}


def features_input(modalities: Modalities, features: str) -> list[str]:
    """The feature file and its token array (read lazily by training and generation), first the
    file: the rules' scripts pass `input.features[0]`."""
    return [features, str(token_array_path(features))] if modalities.video else []


def audio_input(modalities: Modalities, audio: str) -> list[str]:
    """The audio feature file and its token array, for experiments that hear audio."""
    return [audio, str(token_array_path(audio))] if modalities.audio else []


def text_policy_param(modalities: Modalities, config: Mapping[str, Any]) -> Any:
    """The text_policy section, only for experiments that read ASR text (so editing it reruns
    exactly those)."""
    return config["text_policy"] if modalities.reads_asr else None


def by_experiment(experiments: Mapping[str, Any], fn: Callable[..., Any], *args: Any) -> Callable[[Any], Any]:
    """A Snakemake input/params function: `fn(the modalities of experiments[wildcards.experiment], *args)`."""
    return lambda wildcards: fn(Modalities.from_experiment(experiments[wildcards.experiment]), *args)
