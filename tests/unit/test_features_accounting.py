"""ecem.features.accounting: what an exclusion reason counts as, for both token stages."""

from __future__ import annotations

import pytest

from ecem.features.accounting import reason_kind


@pytest.mark.parametrize(("reason", "kind"), [
    ("decode failed (results/ecem/x.mp4): moov atom not found", "decode failed"),  # video
    ("corrupt: segment status corrupt (bad header) (utterance 3)", "corrupt"),  # audio
    ("no_audio: all 2 segment(s) of the prefix are silent", "no_audio"),
    ("quarantined:", "quarantined"),  # an upstream status without detail
    ("incomplete", "incomplete"),  # no ':' at all
    ("", "unknown"),
    (" : nothing before the colon", "unknown"),
])
def test_reason_kind_is_the_words_before_the_detail(reason: str, kind: str) -> None:
    assert reason_kind(reason) == kind
