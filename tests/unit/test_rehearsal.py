"""The MELD-shaped rehearsal script: exact size, MELD's statistics, annotations the dataset stage
can resolve, and faces that fit small frames."""

from __future__ import annotations

import numpy as np
import pytest

from ecem.corpus.build import plan_dialogue
from ecem.corpus.rehearsal import EMOTIONS, rehearsal_script, script_summary
from ecem.corpus.scene import face_box, render_frame
from ecem.dataset.annotations import parse_video_name


def test_exact_size_and_deterministic() -> None:
    for n in (1, 37, 400):
        assert len(rehearsal_script(n, seed=3)["annotations"]) == n
    assert rehearsal_script(50, seed=1) == rehearsal_script(50, seed=1)
    assert rehearsal_script(50, seed=1) != rehearsal_script(50, seed=2)
    with pytest.raises(ValueError, match="at least 1"):
        rehearsal_script(0)


def test_statistics_follow_meld() -> None:
    summary = script_summary(rehearsal_script(3000, seed=0))
    assert 9.0 <= summary["utterances_per_dialogue"] <= 10.2  # MELD: 9.6
    assert 7.5 <= summary["words_per_utterance"] <= 8.5  # MELD: 8.0
    for emotion, share in EMOTIONS.items():
        assert summary["emotions"][emotion] == pytest.approx(share, abs=0.02), emotion
    per_split = summary["dialogues_per_split"]
    assert per_split["train"] > per_split["test"] > per_split["dev"]
    # ECEM annotates ~80% of the non-neutral train + test utterances
    assert 0.3 <= summary["annotations"] / summary["utterances"] <= 0.5


def test_annotations_point_at_non_neutral_utterances_of_their_dialogue() -> None:
    script = rehearsal_script(200, seed=0)
    dialogues = {(d["split"], d["dialogue_id"]): d for d in script["dialogues"]}
    seen = set()
    for a in script["annotations"]:
        split, dia, utt = parse_video_name(a["video"])
        target = dialogues[(split, dia)]["utterances"][utt]
        assert (target["speaker"], target["emotion"], target["text"]) == (a["speaker"], a["emotion"], a["text"])
        assert target["emotion"] != "neutral" and a["cause"].startswith(a["speaker"] + " is ")
        seen.add(a["video"])
    assert len(seen) == 200  # no utterance annotated twice
    assert all(d["split"] in ("train", "dev", "test") for d in script["dialogues"])


def test_faces_scale_with_the_frame_and_stay_inside_it() -> None:
    settings = {"fps": "24000/1001", "pad_before_s": 0.25, "pad_after_s": 0.4, "words_per_minute": 165,
                "dialogue_offset_s": 30.0, "width": 160, "height": 120}
    dialogue = {"split": "train", "dialogue_id": 0, "season": 1, "episode": 1,
                "utterances": [{"speaker": "Ross", "text": "Okay.", "emotion": "joy", "faces": 2}]}
    clip = plan_dialogue(dialogue, settings, 0)[0]
    for i in (0, 7, clip.n_frames - 1):
        frame = render_frame(*clip.look(i), clip.first_frame + i, 160, 120)
        assert frame.shape == (120, 160, 3)
        for plan in clip.faces:
            x0, y0, x1, y1 = face_box(plan, clip.first_frame + i, 160, 120)
            assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 120
            big = face_box(plan, clip.first_frame + i, 320, 240)
            assert (y1 - y0) == pytest.approx((big[3] - big[1]) / 2, rel=0.05)  # half the demo's size
    assert np.ptp(frame) > 0


def test_the_corpus_builds_the_script_its_settings_ask_for() -> None:
    from ecem.corpus.build import _script, load_script
    from ecem.corpus.grounding import grounding_script

    given = rehearsal_script(3, seed=5)
    assert _script({"rehearsal": {"samples": 9, "cues": ["video"]}}, given) == given  # a given script wins
    assert _script({}, {}) == load_script()  # an empty one counts as none
    for rehearsal in (None, {}, {"samples": None, "seed": 0, "cues": []}):
        assert _script({"rehearsal": rehearsal}, None) == load_script()
    assert _script({"rehearsal": {"samples": 7}}, None) == rehearsal_script(7, seed=0)  # seed defaults to 0
    assert _script({"rehearsal": {"samples": 7, "seed": 2, "cues": ["audio"]}}, None) == grounding_script(
        7, 2, ("audio",))
