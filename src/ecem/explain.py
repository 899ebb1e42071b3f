"""`ecem explain`: ask a trained FAME-Net run why a speaker in new clips feels an emotion.

The clips go through what the run's own inputs went through, rebuilt from the run's cards and its
artifacts' metadata and run by the stages' own functions on a scratch directory — nothing here is
a second implementation of a stage:

1. dataset: the clips are probed and joined into one dialogue prefix (earlier clips first, the
   target last) by the render stage (`render_dialogue`), whose duplicate-frame removal finds
   consecutive clips' overlap from the frames alone (no CSV times here: it searches up to
   `max_overlap` frames), with the run's dedup and render settings;
2. features the run uses, each with the settings in its feature file's metadata: video tokens
   (`features/clip.parquet`: backbone, layer, T, N, image size), audio tokens
   (`features/audio.parquet`: speech encoder, A), the facial emotion (`features/faces.parquet`
   and `face_summary.parquet`: detector, expression model, tracking, summary);
3. the utterance (`--utterance`) or its transcript (`--transcribe`, the run's ASR settings);
4. the prompt, by the one prompt builder, with the run's prompt settings and modalities;
5. the explanation, by the run's trained weights and decoding settings (`TrainedRun.generate`,
   batch-invariant: the same text as the generate stage gives the sample).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ecem.artifacts import read_metadata, read_table, write_table
from ecem.meld import EMOTIONS

log = logging.getLogger(__name__)

SPLIT, DIALOGUE = "explain", 0  # the scratch dialogue's key
DEFAULT_MAX_OVERLAP = 12  # frames two consecutive clips may share (half a second at MELD's rate)


class ExplainError(ValueError):
    """A bad input or run: the message is one line saying what is wrong and what to do."""


@dataclasses.dataclass
class Explanation:
    explanation: str
    prompt: str
    face_emotion: str | None
    n_video_tokens: int
    n_audio_tokens: int
    models: dict[str, Any]
    notes: list[str]


@dataclasses.dataclass
class RunSettings:
    """What a run was trained with, read from its run card and its inputs' metadata."""

    run_dir: Path
    workdir: Path  # the workflow's working directory the run's paths are relative to
    card: dict[str, Any]
    modalities: dict[str, Any]
    prompt: dict[str, Any]
    generate: dict[str, Any]

    @classmethod
    def read(cls, run_dir: str | Path) -> RunSettings:
        import json

        run_dir = Path(run_dir)
        card_path, weights = run_dir / "run_card.json", run_dir / "model.safetensors"
        if not (card_path.is_file() and weights.is_file()):
            raise ExplainError(f"{run_dir} is not a trained FAME-Net run (no run_card.json and model.safetensors "
                               f"there): give --run results/runs/<experiment> of a finished run")
        card = json.loads(card_path.read_text())
        predictions = run_dir / "predictions.parquet"
        if not predictions.is_file():
            raise ExplainError(f"{run_dir} has no predictions.parquet to read its decoding settings from: "
                               f"let the workflow generate for it first")
        generate = read_metadata(predictions)["settings"]["generate"]
        return cls(run_dir, run_dir.resolve().parents[2], card, dict(card["config"]["experiment"]),
                   dict(card["config"]["fame"]["prompt"]), dict(generate))

    def artifact(self, relative: str) -> Path:
        """An artifact of the run's workflow (`results/...`), which the run's inputs came from."""
        path = self.workdir / relative
        if not path.is_file():
            raise ExplainError(f"{path} is missing: explain rebuilds the run's inputs with its settings from there")
        return path

    def stage_settings(self, relative: str) -> dict[str, Any]:
        return read_metadata(self.artifact(relative))["settings"]

    def local(self, path: str) -> str:
        """A model path recorded relative to the workflow's directory, made usable from anywhere."""
        candidate = self.workdir / path
        return str(candidate) if not Path(path).is_absolute() and candidate.exists() else path


def _utterance_rows(clips: Sequence[Path], speaker: str, emotion: str, text: str, max_overlap: int) -> pd.DataFrame:
    """The clips as the rows of one MELD dialogue (earlier clips first, the target last), with
    times that tell the render stage to look for an overlap of up to `max_overlap` frames."""
    from ecem.clip_probe import probe_clip

    rows, start = [], 0.0
    for uid, clip in enumerate(clips):
        probe = probe_clip(str(clip))
        if probe.status not in ("ok", "no_audio"):
            raise ExplainError(f"{clip}: not a usable video ({probe.status}: {probe.status_detail})")
        target = uid == len(clips) - 1
        rows.append({"meld_split": SPLIT, "dialogue_id": DIALOGUE, "utterance_id": uid,
                     "speaker": speaker if target else "", "text": text if target else "", "text_raw": "",
                     "emotion": emotion if target else "neutral", "start_s": start,
                     "end_s": start + probe.duration_s, "video_path": str(clip), "csv_status": None,
                     "csv_detail": "", "csv_line": uid + 2})
        # the next clip "starts" max_overlap / 2 frames before this one ends: the render stage then
        # searches 1 .. max_overlap shared frames around it and cuts only what the frames confirm
        start += probe.duration_s - (max_overlap / 2) / max(probe.fps, 1e-6)
    return pd.DataFrame(rows)


def _dataset(settings: RunSettings, clips: Sequence[Path], speaker: str, emotion: str, text: str,
             max_overlap: int, scratch: Path) -> tuple[pd.DataFrame, Path, Path]:
    """Probe and render the clips as the dataset stage does: (utterances, segments, clips paths)."""
    from ecem.dataset.probe import probe_utterances
    from ecem.dataset.render import CLIP_COLUMNS, SEGMENT_COLUMNS, render_dialogue

    probe_cfg = settings.stage_settings("results/ecem/utterances.parquet")["probe"]
    dataset = settings.stage_settings("results/ecem/segments.parquet")
    dedup = {**dataset["dedup"], "search_frames": max_overlap // 2}
    utterances = probe_utterances(_utterance_rows(clips, speaker, emotion, text, max_overlap), probe_cfg)
    segs, clip_rows = render_dialogue(utterances, [len(clips) - 1], scratch / "render", dedup,
                                      {**dataset["render"], "prefix_clips": "files"})
    target = clip_rows[-1]
    if target["status"] != "ok":
        raise ExplainError(f"{clips[-1]}: the target clip is unusable ({target['status_detail']})")
    segments_path, clips_path = scratch / "segments.parquet", scratch / "clips.parquet"
    write_table(pd.DataFrame(segs, columns=SEGMENT_COLUMNS), segments_path, "dataset", dataset)
    write_table(pd.DataFrame(clip_rows, columns=CLIP_COLUMNS), clips_path, "dataset", dataset)
    return utterances, segments_path, clips_path


def _video_tokens(settings: RunSettings, segments: Path, clips: Path, scratch: Path, device: str) -> Path:
    from ecem.features.video_stage import extract_shard

    meta = settings.stage_settings("results/features/clip.parquet")
    cfg = {"model": settings.local(meta["model"]), "image_size": meta["image_size"],
           "num_frames": meta["num_frames"], "hidden_layer": meta["hidden_layer"], "resize": meta["resize"],
           "dtype": meta["dtype"], "device": device, "batch_size": meta["batch_size"],
           "sampling": meta["sampling"], "decoder": meta["decoder"]}
    out = scratch / "clip.parquet"
    extract_shard(str(clips), str(segments), 0, 1, cfg, str(out), progress=False)
    return out


def _audio_tokens(settings: RunSettings, segments: Path, clips: Path, scratch: Path, device: str) -> Path:
    from ecem.features.audio_stage import extract_shard

    meta = settings.stage_settings("results/features/audio.parquet")
    cfg = {"model": meta["model"], "num_tokens": meta["num_tokens"], "device": device,
           "compute_type": meta["compute_type"], "silence_dbfs": meta["silence_dbfs"], "batch_size": meta["batch_size"]}
    out = scratch / "audio.parquet"
    extract_shard(str(clips), str(segments), 0, 1, cfg, str(out))
    return out


def _face_emotion(settings: RunSettings, segments: Path, clips: Path, scratch: Path, device: str) -> str | None:
    from ecem.faces.stage import run_faces, run_summary

    meta = settings.stage_settings("results/features/face_summary.parquet")
    faces, face_segments, summary = scratch / "faces.parquet", scratch / "face_segments.parquet", scratch / "summary.parquet"
    run_faces(str(segments), {**meta["faces_settings"]["config"], "device": device}, 0, 1, str(faces), str(face_segments))
    run_summary(str(clips), str(faces), str(face_segments), meta["summary"], str(summary), str(scratch / "faces.json"))
    rows = read_table(summary)
    return None if rows.empty else str(rows["face_emotion"].iloc[0])


def _transcript(settings: RunSettings, utterances: pd.DataFrame, device: str) -> str:
    from ecem.transcribe.stage import transcribe_utterances

    cfg = settings.stage_settings("results/transcripts.parquet")["transcribe"]
    rows = transcribe_utterances(utterances.tail(1), {**cfg, "device": device})
    text = str(rows["text_asr"].iloc[0] or "").strip() if len(rows) else ""
    if not text:
        raise ExplainError("--transcribe found no speech in the target clip: give the words with --utterance")
    return text


def explain(run_dir: str | Path, clips: Sequence[str | Path], speaker: str, emotion: str,
            utterance: str | None = None, transcribe: bool = False, device: str = "auto",
            max_overlap: int = DEFAULT_MAX_OVERLAP) -> Explanation:
    """The run's explanation of why `speaker`, in the last of `clips` (after the earlier ones in
    dialogue order), feels `emotion`."""
    from ecem.dataset.annotations import sample_id
    from ecem.devices import resolve_device
    from ecem.fame.prompt import build_examples
    from ecem.modalities import Modalities
    from ecem.tokens import load_tokens

    if emotion not in EMOTIONS:
        raise ExplainError(f"emotion {emotion!r} is not one of MELD's seven: {', '.join(EMOTIONS)}")
    paths = [Path(c) for c in clips]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ExplainError(f"no such clip: {missing[0]}")
    settings = RunSettings.read(run_dir)
    modalities = Modalities.from_experiment(settings.modalities)
    if modalities.text and not (utterance or transcribe):
        raise ExplainError(f"run {settings.run_dir.name} reads the utterance: give --utterance TEXT or --transcribe")
    device = resolve_device(device, "--device")
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ecem-explain-") as tmp:
        scratch = Path(tmp)
        utterances, segments, clip_table = _dataset(settings, paths, speaker, emotion, utterance or "",
                                                     max_overlap, scratch)
        if modalities.text and transcribe and not utterance:
            utterance = _transcript(settings, utterances, device)
            notes.append(f"utterance transcribed: {utterance!r}")
        sample = sample_id(SPLIT, DIALOGUE, len(paths) - 1)
        video = _video_tokens(settings, segments, clip_table, scratch, device) if modalities.video else None
        audio = _audio_tokens(settings, segments, clip_table, scratch, device) if modalities.audio else None
        face = _face_emotion(settings, segments, clip_table, scratch, device) if modalities.face else None
        video_tokens = load_tokens(video) if video else None  # each token file read once
        audios = load_tokens(audio) if audio else None
        if modalities.audio and not audios:
            notes.append("the clips have no audible sound: the run hears no audio for them (as it does for its "
                         "own samples without audio)")
        annotations = pd.DataFrame([{"sample_id": sample, "split": "test", "meld_split": SPLIT,
                                     "dialogue_id": DIALOGUE, "utterance_id": len(paths) - 1, "speaker": speaker,
                                     "emotion": emotion, "cause": ""}])
        texts = pd.DataFrame({"meld_split": SPLIT, "dialogue_id": DIALOGUE,
                              "utterance_id": range(len(paths)), "text": [""] * (len(paths) - 1) + [utterance or ""],
                              "text_source": "given"})
        faces = pd.DataFrame({"sample_id": [sample], "face_emotion": [face]}) if modalities.face else None
        examples, _ = build_examples(annotations, read_table(clip_table), utterances, texts, faces, modalities,
                                     settings.prompt, set(video_tokens) if video else None,
                                     set(audios) if audio else None)
        if examples.empty:
            raise ExplainError(f"{paths[-1]}: no video tokens could be made of the clips (see the log)")
        videos = {sample: video_tokens[sample]} if video else {}
        text = _generate(settings, examples, videos, audios, device)
    return Explanation(text, str(examples["prompt"].iloc[0]), face, len(videos[sample]) if videos else 0,
                       len(audios[sample]) if audios and sample in audios else 0, _models(settings, modalities),
                       notes)


def _generate(settings: RunSettings, examples: pd.DataFrame, videos: dict[str, Any], audios: dict[str, Any] | None,
              device: str) -> str:
    """The trained run's explanation of the one example, generated as its generate rule would."""
    from ecem.fame.inputs import FameInputs
    from ecem.fame.trained import TrainedRun

    fame = settings.card["config"]["fame"]
    inputs = FameInputs(examples, settings.modalities, dict.fromkeys(examples["sample_id"], "test"), videos, audios)
    run = TrainedRun.load(inputs, settings.local(fame["llm"]), str(settings.run_dir / "model.safetensors"), fame,
                          int(settings.card["config"]["train"]["max_length"]), threads=1, device=device,
                          audio_dim=(settings.card.get("audio") or {}).get("audio_dim"))
    return run.generate(examples, settings.generate)[0]


def _models(settings: RunSettings, modalities: Any) -> dict[str, Any]:
    """Which models made the explanation (what `--json` reports)."""
    card = settings.card
    models: dict[str, Any] = {"llm": {k: card["llm"].get(k) for k in ("name_or_path", "model", "stand_in_for",
                                                                         "random_weights")}}
    if modalities.video:
        meta = settings.stage_settings("results/features/clip.parquet")
        models["vision"] = {"model": meta["model"], "layer": meta["hidden_layer"], "layout": meta["layout"],
                            "image_size": meta["image_size"]}
    if modalities.audio:
        meta = settings.stage_settings("results/features/audio.parquet")
        models["audio"] = {"model": meta["model"], "num_tokens": meta["num_tokens"]}
    if modalities.face:
        meta = settings.stage_settings("results/features/faces.parquet")
        models["faces"] = {"detector": meta["detector"], "expression": meta["expression_model"]}
    return models
