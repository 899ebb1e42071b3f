"""The planted-cue corpus script: causes name the planted cues, and nothing else does."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ecem.corpus.grounding import OBJECTS, cue_words, grounding_script
from ecem.corpus.rehearsal import WORDS
from ecem.corpus.sound import SOUNDS, sound


def test_causes_name_the_dialogues_planted_object_and_sound():
    script = grounding_script(60, seed=3)
    assert len(script["annotations"]) == 60
    utterances = {(d["dialogue_id"], u): utt for d in script["dialogues"] for u, utt in enumerate(d["utterances"])}
    for a in script["annotations"]:
        d, u = map(int, a["video"].removesuffix(".mp4").split("_"))
        utt = utterances[(d, u)]
        assert a["planted"] == {"object": OBJECTS[utt["background"]], "sound": utt["sound"]}
        assert a["cause"].endswith(f"because of the {a['planted']['object']} and the {a['planted']['sound']}.")
        assert a["cause"].startswith(f"{a['speaker']} is ")
    # one place and one sound per dialogue, drawn independently, and every cue is used
    for d in script["dialogues"]:
        assert len({u["background"] for u in d["utterances"]}) == len({u["sound"] for u in d["utterances"]}) == 1
    assert {a["planted"]["object"] for a in script["annotations"]} == set(OBJECTS.values())
    assert {a["planted"]["sound"] for a in script["annotations"]} == set(SOUNDS)


def test_nothing_but_the_media_names_a_cue():
    cues = cue_words()["video"] + cue_words()["audio"]
    assert not set(cues) & set(WORDS)  # the utterance vocabulary names no cue
    for a in grounding_script(40, seed=0)["annotations"]:
        assert not any(re.search(rf"\b{c}\b", a["text"].lower()) for c in cues)


def test_a_single_cue_corpus_names_only_that_cue():
    video = grounding_script(10, seed=1, cues=("video",))["annotations"]
    assert all(set(a["planted"]) == {"object"} and " and the " not in a["cause"] for a in video)
    audio = grounding_script(10, seed=1, cues=("audio",))
    assert all(set(a["planted"]) == {"sound"} for a in audio["annotations"])
    with pytest.raises(ValueError, match="planted cues"):
        grounding_script(10, cues=("smell",))


def test_sounds_are_distinct_and_windows_of_one_timeline():
    sr = 16000
    spectra = {}
    for name in SOUNDS:
        wave = sound(name, sr * 2, sr)
        assert 0.05 < np.abs(wave).max() <= 0.25 + 1e-9
        spectrum = np.abs(np.fft.rfft(wave))
        spectra[name] = spectrum / np.linalg.norm(spectrum)
        # a clip that starts later on the dialogue's timeline carries the same samples there
        np.testing.assert_allclose(sound(name, sr, sr, start=sr // 2), wave[sr // 2: sr // 2 + sr], atol=1e-12)
    names = list(spectra)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert float(spectra[a] @ spectra[b]) < 0.5, (a, b)
