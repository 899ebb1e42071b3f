"""Build the offline demo corpus in MELD.Raw's exact layout, plus ECEM-format annotations.

Nothing is downloaded: faces and backgrounds are scikit-image's photographs, speech is eSpeak NG,
encoding is ffmpeg (H.264 + AAC). Each dialogue is a continuous timeline; clip *i* starts
`overlap_i` frames before the end of clip *i-1*, and the CSV times are written from those frame
positions, so the overlap is both in the pixels and in the times, like MELD. A sidecar
`truth.json` records everything planted (overlaps, faults, face boxes per frame, spoken text)
so tests can check the pipeline exactly.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from ecem.artifacts import write_json
from ecem.corpus.grounding import grounding_script
from ecem.corpus.rehearsal import rehearsal_script, script_summary
from ecem.corpus.scene import FacePlan, face_box, render_frame
from ecem.corpus.sound import sound
from ecem.corpus.speech import synthesize
from ecem.ffmpeg import run_ffmpeg
from ecem.meld import CSV_COLUMNS, MeldLayout, format_time

log = logging.getLogger(__name__)

_SENTIMENT = {"neutral": "neutral", "joy": "positive", "surprise": "positive"}


@dataclasses.dataclass
class PlannedClip:
    """One utterance clip as planned on its dialogue's timeline (frame indices are global)."""

    split: str
    dialogue_id: int
    utterance_id: int
    row: dict[str, Any]
    first_frame: int
    n_frames: int
    overlap: int
    speech: np.ndarray
    speech_offset_frames: int
    background: int | str
    faces: list[FacePlan]
    fault: str | None
    previous: PlannedClip | None = None
    sound: str | None = None  # a non-speech sound under the whole clip (ecem.corpus.sound)

    def look(self, i: int) -> tuple[int, list[FacePlan]]:
        """Background and faces of the clip's frame `i`: its first `overlap` frames belong to
        the previous utterance's part of the timeline, so they look like that utterance."""
        owner = self.previous if (i < self.overlap and self.previous is not None) else self
        return owner.background, owner.faces


def load_script(path: str | Path | None = None) -> dict[str, Any]:
    """The demo script (dialogues + annotations); the packaged one unless `path` is given."""
    if path is None:
        text = resources.files("ecem.corpus").joinpath("demo_script.yaml").read_text()
    else:
        text = Path(path).read_text()
    return yaml.safe_load(text)


def _face_plans(n_faces: int, ordinal: int, height: int) -> list[FacePlan]:
    plans = [FacePlan(x_phase=(0.17 * ordinal) % 1.0, y=height * 0.45, speed_px=3.0, scale=0.62)]
    if n_faces >= 2:  # the first face high, the second low: two people side by side, never occluding
        plans = [FacePlan(x_phase=(0.17 * ordinal) % 1.0, y=height * 0.3, speed_px=3.0, scale=0.6),
                 FacePlan(x_phase=(0.17 * ordinal + 0.5) % 1.0, y=height * 0.78, speed_px=2.0,
                          scale=0.5, mirrored=True)]
    return plans[:n_faces]


def _fps(settings: dict[str, Any]) -> Fraction:
    """The demo's frame rate as an exact fraction (denominator at most 1001, so MELD's `24000/1001`
    stays exact): frame positions and CSV times are computed from it without rounding."""
    return Fraction(str(settings["fps"])).limit_denominator(1001)


def plan_dialogue(dialogue: dict[str, Any], settings: dict[str, Any], ordinal: int) -> list[PlannedClip]:
    """Lay a dialogue's utterances on one timeline; return the clips with their frame windows."""
    fps = _fps(settings)
    pad_before = int(round(settings["pad_before_s"] * fps))
    pad_after = int(round(settings["pad_after_s"] * fps))
    clips: list[PlannedClip] = []
    core_start = int(round(settings["dialogue_offset_s"] * fps)) * (ordinal + 1)
    for uid, utt in enumerate(dialogue["utterances"]):
        overlap = int(utt.get("overlap", 0)) if uid > 0 else 0
        if overlap > pad_after:
            raise ValueError(f"overlap {overlap} exceeds the silent tail ({pad_after} frames)")
        speech, sr = synthesize(utt["text"], words_per_minute=settings["words_per_minute"])
        speech_frames = math.ceil(len(speech) / sr * fps)
        core_len = pad_before + speech_frames + pad_after
        fault = utt.get("fault")
        if fault == "silent":
            speech = np.zeros_like(speech)
        clips.append(PlannedClip(
            split=dialogue["split"], dialogue_id=int(dialogue["dialogue_id"]), utterance_id=uid,
            row={"Utterance": utt.get("csv_text", utt["text"]), "Speaker": utt["speaker"],
                 "Emotion": utt["emotion"], "Sentiment": _SENTIMENT.get(utt["emotion"], "negative"),
                 "Season": dialogue["season"], "Episode": dialogue["episode"],
                 "spoken_text": utt["text"], "sample_rate": sr},
            first_frame=core_start - overlap, n_frames=core_len + overlap, overlap=overlap,
            speech=speech, speech_offset_frames=overlap + pad_before,
            background=utt.get("background", ordinal * 7 + uid),
            faces=_face_plans(int(utt.get("faces", 1)), ordinal + uid, settings["height"]),
            fault=fault, previous=clips[-1] if clips else None, sound=utt.get("sound"),
        ))
        core_start += core_len
    return clips


def _encode_clip(clip: PlannedClip, path: Path, settings: dict[str, Any]) -> None:
    fps = _fps(settings)
    width, height = settings["width"], settings["height"]
    frames = np.stack([
        render_frame(*clip.look(i), clip.first_frame + i, width, height)
        for i in range(clip.n_frames)
    ])
    sr = clip.row["sample_rate"]
    n_samples = int(round(clip.n_frames / fps * sr))
    audio = np.zeros(n_samples, dtype=np.int16)
    start = int(round(clip.speech_offset_frames / fps * sr))
    end = min(start + len(clip.speech), n_samples)
    audio[start:end] = clip.speech[: end - start]
    if clip.sound is not None:  # on the dialogue's timeline: overlapping clips share its samples
        under = sound(clip.sound, n_samples, sr, start=int(round(clip.first_frame / fps * sr)))
        audio = np.clip(audio + under * 32767, -32768, 32767).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "a.wav"
        with wave.open(str(wav_path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(sr)
            wav.writeframes(audio.tobytes())
        run_ffmpeg([
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
            "-i", "pipe:0", "-i", str(wav_path),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", str(settings["crf"]),
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", str(path),
        ], input_bytes=frames.tobytes())
    if clip.fault == "corrupt":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])  # mp4 index (moov) is at the end: now unreadable


def _truth_entry(clip: PlannedClip, settings: dict[str, Any]) -> dict[str, Any]:
    fps = _fps(settings)
    return {
        "split": clip.split, "dialogue_id": clip.dialogue_id, "utterance_id": clip.utterance_id,
        "n_frames": clip.n_frames, "overlap_with_previous": clip.overlap,
        "fault": clip.fault, "spoken_text": clip.row["spoken_text"],
        "csv_text": clip.row["Utterance"], "n_faces": len(clip.faces),
        "frames_with_previous_look": clip.overlap,
        "speech_start_s": clip.speech_offset_frames / float(fps),
        "face_boxes": [
            [face_box(p, clip.first_frame + i, settings["width"], settings["height"])
             for p in clip.look(i)[1]]
            for i in range(clip.n_frames)
        ],
    }


def _script(settings: dict[str, Any], script: dict[str, Any] | None) -> dict[str, Any]:
    """The script to build: `script` if given (and not empty), else the one `settings`' `rehearsal`
    section asks for (planted cues, or MELD-shaped of `samples` annotations), else the packaged
    demo script."""
    rehearsal = settings.get("rehearsal") or {}
    if script is None and rehearsal.get("samples") and rehearsal.get("cues"):
        script = grounding_script(int(rehearsal["samples"]), int(rehearsal["seed"]), tuple(rehearsal["cues"]))
        log.info("planted-cue script (%s): %s", ", ".join(rehearsal["cues"]), script_summary(script))
    elif script is None and rehearsal.get("samples"):
        script = rehearsal_script(int(rehearsal["samples"]), int(rehearsal.get("seed", 0)))
        log.info("rehearsal script: %s", script_summary(script))
    return script or load_script()


def _write_csvs(layout: MeldLayout, clips: list[PlannedClip], fps: Fraction) -> None:
    """One MELD CSV per split of `layout`, its times from the clips' frame windows; each split's
    clip directory is created (empty) too."""
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in layout.splits}
    for clip in clips:
        start = clip.first_frame / fps
        end = (clip.first_frame + clip.n_frames) / fps
        row = {k: v for k, v in clip.row.items() if k in CSV_COLUMNS}
        row.update(Dialogue_ID=clip.dialogue_id, Utterance_ID=clip.utterance_id,
                   StartTime=format_time(float(start)), EndTime=format_time(float(end)))
        rows[clip.split].append(row)
    for split, split_rows in rows.items():
        csv_path = layout.csv_path(split)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for i, row in enumerate(split_rows, start=1):
                writer.writerow({**row, "Sr No.": i})
        layout.video_dir(split).mkdir(parents=True, exist_ok=True)


def _encode_clips(layout: MeldLayout, clips: list[PlannedClip], settings: dict[str, Any],
                  threads: int) -> int:
    """Encode every clip not planted as `missing` into its MELD path, `threads` at a time;
    returns how many were encoded."""
    to_encode = [c for c in clips if c.fault != "missing"]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        jobs = [pool.submit(_encode_clip, c, layout.video_path(c.split, c.dialogue_id, c.utterance_id),
                            settings) for c in to_encode]
        for job in tqdm(jobs, desc="demo clips", unit="clip"):
            job.result()
    return len(to_encode)


def _ecem_annotations(script: dict[str, Any]) -> list[dict[str, Any]]:
    """The script's annotations in the ECEM JSON format (a LLaVA-style conversation per sample)."""
    return [
        {"id": i, "video": a["video"], "conversations": [
            {"from": "human", "value": "<video>\nExplain why the emotion of this statement is "
                                       f"{a['emotion']} <{a['speaker']}: {a['text']}>"},
            {"from": "gpt", "value": a["cause"]},
        ]}
        for i, a in enumerate(script["annotations"])
    ]


def build_demo_corpus(layout: MeldLayout, annotations_path: str | Path, truth_path: str | Path,
                      settings: dict[str, Any], threads: int = 1,
                      script: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write MELD.Raw (CSVs + clips) at `layout`, the ECEM JSON and the truth record.

    Returns the truth record. `settings` is the config's `demo` section; with
    `rehearsal.samples` set there, the script is a MELD-shaped one of that many annotations
    (`ecem.corpus.rehearsal`) instead of the packaged demo script, or with `rehearsal.cues` too,
    a planted-cue one (`ecem.corpus.grounding`).
    """
    script = _script(settings, script)
    fps = _fps(settings)
    clips = [c for i, d in enumerate(script["dialogues"]) for c in plan_dialogue(d, settings, i)]
    _write_csvs(layout, clips, fps)
    n_encoded = _encode_clips(layout, clips, settings, threads)
    write_json(_ecem_annotations(script), annotations_path)
    truth = {
        "fps": float(fps), "width": settings["width"], "height": settings["height"],
        "clips": [_truth_entry(c, settings) for c in clips],
        "annotations": [{"video": a["video"], "planted": a.get("planted")} for a in script["annotations"]],
    }
    write_json(truth, truth_path)
    log.info("demo corpus: %d clips (%d encoded) in %s", len(clips), n_encoded, layout.root)
    return truth
