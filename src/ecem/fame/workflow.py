"""Input and params functions of the FAME-Net rules (workflow/rules/fame.smk), kept out of the
.smk file: which upstream artifacts an experiment needs follows from its modalities."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecem.tokens import token_array_path


def uses_asr(experiment: Mapping[str, Any]) -> bool:
    return bool(experiment["text"]) and experiment["text_source"] != "meld"


def example_inputs(experiment: Mapping[str, Any], paths: Mapping[str, str]) -> dict[str, Any]:
    """Inputs of rule fame_examples: only the artifacts the experiment's modalities use (`paths`
    names them: annotations, clips, utterances, features, audio, faces, transcripts)."""
    wanted = ["annotations", "clips", "utterances"]
    if experiment["video"]:
        wanted.append("features")
    if uses_audio(experiment):
        wanted.append("audio")
    if experiment["face"]:
        wanted.append("faces")
    if uses_asr(experiment):
        wanted.append("transcripts")
    return {name: paths[name] for name in wanted}


def features_input(experiment: Mapping[str, Any], features: str) -> list[str]:
    """The feature file and its token array (read lazily by training and generation), first the
    file: the rules' scripts pass `input.features[0]`."""
    return [features, str(token_array_path(features))] if experiment["video"] else []


def uses_audio(experiment: Mapping[str, Any]) -> bool:
    return bool(experiment.get("audio", False))


def audio_input(experiment: Mapping[str, Any], audio: str) -> list[str]:
    """The audio feature file and its token array, for experiments that hear audio."""
    return [audio, str(token_array_path(audio))] if uses_audio(experiment) else []


def text_policy_param(experiment: Mapping[str, Any], config: Mapping[str, Any]) -> Any:
    """The text_policy section, only for experiments that read ASR text (so editing it reruns
    exactly those)."""
    return config["text_policy"] if uses_asr(experiment) else None


def by_experiment(experiments: Mapping[str, Any], fn: Callable[..., Any], *args: Any) -> Callable[[Any], Any]:
    """A Snakemake input/params function: `fn(experiments[wildcards.experiment], *args)`."""
    return lambda wildcards: fn(experiments[wildcards.experiment], *args)
