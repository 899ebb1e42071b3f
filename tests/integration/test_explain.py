"""`ecem explain` on the demo's trained runs: it reproduces a run's prediction for a test sample
from the sample's own MELD clips, explains a real clip the demo never saw, and answers every bad
input with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecem.artifacts import read_table
from ecem.explain import ExplainError, explain
from ecem.ffmpeg import run_ffmpeg

pytestmark = pytest.mark.integration

ECEM = str(Path(sys.executable).with_name("ecem"))
SAMPLE = "test/dia3_utt2"  # a test sample whose prefix joins three clips (planted overlaps 5 and 4)


def sample_clips(demo_run: Path, sample: str) -> list[Path]:
    """The MELD clips of a sample's prefix, earlier ones first."""
    split, rest = sample.split("/")
    dia, utt = (int(x) for x in rest.removeprefix("dia").split("_utt"))
    folder = {"test": "output_repeated_splits_test", "train": "train_splits"}[split]
    return [demo_run / f"resources/demo/MELD.Raw/{folder}/dia{dia}_utt{u}.mp4" for u in range(utt + 1)]


def test_explain_gives_the_runs_own_prediction_for_a_test_sample(demo_run: Path):
    run = demo_run / "results/runs/V+T+E"
    example = read_table(run / "examples.parquet").set_index("sample_id").loc[SAMPLE]
    prediction = read_table(run / "predictions.parquet").set_index("sample_id").loc[SAMPLE, "prediction"]
    result = explain(run, sample_clips(demo_run, SAMPLE), example["speaker"], example["emotion"], example["text"])
    # same prompt (the text, the facial emotion found in the clip), same tokens, same decoding
    assert result.prompt == example["prompt"] and result.face_emotion == example["face_emotion"]
    assert result.explanation == prediction
    assert result.n_video_tokens == 44 and result.n_audio_tokens == 0
    assert result.models["vision"]["layout"]["total"] == 44


@pytest.fixture(scope="module")
def outside_clip(tmp_path_factory) -> Path:
    """A real clip the demo never saw: scikit-image's cameraman photograph (not one of the demo's
    pictures) panned slowly for 3 s, without a sound track."""
    import skimage.data

    photo = np.stack([skimage.data.camera()] * 3, axis=-1)[32:352, 32:448]  # 320×416 around him
    frames = np.stack([photo[i:i + 240, i:i + 320] for i in range(0, 72)])
    path = tmp_path_factory.mktemp("outside") / "cameraman.mp4"
    run_ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "320x240", "-r", "24", "-i", "pipe:0",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)],
               input_bytes=frames.tobytes())
    return path


def test_the_command_explains_a_clip_outside_the_demo_and_says_it_heard_nothing(demo_run: Path, outside_clip: Path):
    proc = subprocess.run([ECEM, "explain", "--run", str(demo_run / "results/runs/V+T+E+A"), str(outside_clip),
                           "--speaker", "Ross", "--emotion", "surprise", "--utterance", "I did not expect that.",
                           "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert len(out["explanation"].split()) >= 3 and out["n_video_tokens"] == 44 and out["n_audio_tokens"] == 0
    assert "<Ross: I did not expect that.>" in out["prompt"] and "<audio>" not in out["prompt"]
    assert out["face_emotion"] and out["models"]["audio"]["model"] == "bundled:tiny.en"
    assert any("no audible sound" in note for note in out["notes"])


@pytest.mark.parametrize("case, message", [
    ("not_a_video", "not a usable video"),
    ("no_model", "is not a trained FAME-Net run"),
    ("emotion", "is not one of MELD's seven"),
    ("no_text", "reads the utterance: give --utterance TEXT or --transcribe"),
])
def test_a_bad_input_gets_one_clear_line(demo_run: Path, tmp_path: Path, case: str, message: str):
    run, clip = demo_run / "results/runs/V+T+E", sample_clips(demo_run, SAMPLE)[-1]
    args = {"run_dir": run, "clips": [clip], "speaker": "Ross", "emotion": "sadness", "utterance": "Hi."}
    if case == "not_a_video":
        fake = tmp_path / "notes.mp4"
        fake.write_text("not a video at all\n")
        args["clips"] = [fake]
    elif case == "no_model":
        args["run_dir"] = tmp_path
    elif case == "emotion":
        args["emotion"] = "boredom"
    else:
        args["utterance"] = None
    with pytest.raises(ExplainError, match=message) as err:
        explain(**args)
    assert "\n" not in str(err.value)


def test_the_command_prints_one_line_and_fails_on_a_bad_input(demo_run: Path):
    proc = subprocess.run([ECEM, "explain", "--run", str(demo_run / "results/runs/V+T+E"),
                           str(sample_clips(demo_run, SAMPLE)[-1]), "--speaker", "Ross", "--emotion", "boredom"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "ecem explain: emotion 'boredom' is not one of MELD's seven: anger, disgust, fear, joy, neutral, sadness, "
        "surprise"]
