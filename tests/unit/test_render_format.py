"""The common format a dialogue is rendered at, fitting other sizes into it, and CSV-vs-media
length checks."""

import math

import pandas as pd
import pytest

from ecem.dataset.probe import duration_mismatch
from ecem.dataset.render import dialogue_format
from ecem.dataset.segment import even_size, fit_geometry, rate_text


def test_dialogue_format_is_that_of_most_clips_first_on_ties():
    usable = pd.DataFrame({"width": [320, 1280, 320, 640], "height": [240, 720, 240, 360],
                           "fps": [24000 / 1001, 30.0, 24000 / 1001, 30.0], "variable_rate": False})
    assert dialogue_format(usable) == ((320, 240), pytest.approx(24000 / 1001))
    tie = pd.DataFrame({"width": [1280, 320], "height": [720, 240], "fps": [30.0, 25.0],
                        "variable_rate": False})
    assert dialogue_format(tie) == ((1280, 720), 30.0)
    size, fps = dialogue_format(tie.iloc[:0])
    assert size == (0, 0) and math.isnan(fps)


def test_rate_text_recovers_ntsc_fractions():
    assert rate_text(24000 / 1001) == "24000/1001"
    assert rate_text(30.0) == "30/1" and rate_text(25.0) == "25/1"


def test_the_rate_is_voted_by_constant_rate_clips():
    usable = pd.DataFrame({"width": [320] * 3, "height": [240] * 3, "fps": [16.872, 16.872, 30.0],
                           "variable_rate": [True, True, False]})
    assert dialogue_format(usable)[1] == 30.0


def test_other_sizes_are_fitted_with_their_aspect_and_odd_sizes_padded_to_even():
    assert even_size((321, 241)) == (322, 242) and even_size((320, 240)) == (320, 240)
    assert fit_geometry((320, 240), (320, 240)) == ("", "", "")
    pad, note, kind = fit_geometry((321, 241), (322, 242))
    assert pad == "pad=322:242:0:0:black" and kind == "padded_to_even" and "odd frame size 321×241" in note
    scale, note, kind = fit_geometry((240, 320), (320, 240))  # a portrait (rotated) clip
    assert kind == "fitted" and "pillarboxed" in note and "force_original_aspect_ratio=decrease" in scale
    assert "letterboxed" in fit_geometry((1280, 720), (320, 240))[1]
    assert "same aspect" in fit_geometry((640, 480), (320, 240))[1]


def test_duration_mismatch_needs_both_tolerances_exceeded():
    assert duration_mismatch(3.0, 3.2, 1.0, 1.5) == ""             # ordinary slack
    assert duration_mismatch(0.9, 0.3, 1.0, 1.5) == ""             # 3× but only 0.6 s apart
    assert "10.0x" in duration_mismatch(30.0, 3.0, 1.0, 1.5)       # a clip 10× its CSV times
    assert duration_mismatch(1.4, 3.0, 1.0, 1.5).startswith("clip is 1.40 s")
    assert duration_mismatch(float("nan"), 3.0, 1.0, 1.5) == ""
