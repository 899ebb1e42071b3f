"""The common format a dialogue is rendered at, re-timing, and CSV-vs-media length checks."""

import math

import pandas as pd
import pytest

from ecem.dataset.probe import duration_mismatch
from ecem.dataset.render import atempo_chain, dialogue_format, rate_text


def test_dialogue_format_is_that_of_most_clips_first_on_ties():
    usable = pd.DataFrame({"width": [320, 1280, 320, 640], "height": [240, 720, 240, 360],
                           "fps": [24000 / 1001, 30.0, 24000 / 1001, 30.0]})
    assert dialogue_format(usable) == ((320, 240), pytest.approx(24000 / 1001))
    tie = pd.DataFrame({"width": [1280, 320], "height": [720, 240], "fps": [30.0, 25.0]})
    assert dialogue_format(tie) == ((1280, 720), 30.0)
    size, fps = dialogue_format(tie.iloc[:0])
    assert size == (0, 0) and math.isnan(fps)


def test_rate_text_recovers_ntsc_fractions():
    assert rate_text(24000 / 1001) == "24000/1001"
    assert rate_text(30.0) == "30/1" and rate_text(25.0) == "25/1"


@pytest.mark.parametrize("factor", [0.7992, 1.25, 0.3, 3.5])
def test_atempo_chain_multiplies_to_the_factor_within_ffmpegs_range(factor):
    steps = [float(s.split("=")[1]) for s in atempo_chain(factor).split(",")]
    assert all(0.5 <= s <= 2.0 for s in steps)
    assert math.prod(steps) == pytest.approx(factor)


def test_duration_mismatch_needs_both_tolerances_exceeded():
    assert duration_mismatch(3.0, 3.2, 1.0, 1.5) == ""             # ordinary slack
    assert duration_mismatch(0.9, 0.3, 1.0, 1.5) == ""             # 3× but only 0.6 s apart
    assert "10.0x" in duration_mismatch(30.0, 3.0, 1.0, 1.5)       # a clip 10× its CSV times
    assert duration_mismatch(1.4, 3.0, 1.0, 1.5).startswith("clip is 1.40 s")
    assert duration_mismatch(float("nan"), 3.0, 1.0, 1.5) == ""
