"""Modalities: one typed reading of an experiment entry (config or the copy an artifact records)."""

from ecem.modalities import Modalities


def test_an_entry_is_read_with_its_types_and_without_its_description():
    mods = Modalities.from_experiment({"description": "video + text", "video": 1, "text": True,
                                       "face": False, "text_source": "asr", "context_turns": "2",
                                       "audio": True})
    assert mods == Modalities(video=True, text=True, face=False, context_turns=2, text_source="asr", audio=True)


def test_settings_left_out_take_the_defaults():
    mods = Modalities.from_experiment({"video": True, "text": False, "face": True})
    assert (mods.audio, mods.context_turns, mods.text_source) == (False, 0, "meld")


def test_reads_asr_only_with_text_from_the_transcripts():
    assert Modalities(video=True, text=True, face=False, text_source="asr").reads_asr
    assert Modalities(video=True, text=True, face=False, text_source="asr_if_confident").reads_asr
    assert not Modalities(video=True, text=True, face=False, text_source="meld").reads_asr
    assert not Modalities(video=True, text=False, face=False, text_source="asr").reads_asr
