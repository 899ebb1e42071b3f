"""MELD times, text repair and CSV reading."""

import pytest

from ecem.meld import MeldLayout, format_time, parse_time, read_meld, repair_text


@pytest.mark.parametrize("text,seconds", [("00:16:16,059", 976.059), ("0:00:01,5", 1.5),
                                           ("01:02:03.004", 3723.004)])
def test_parse_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "16:16", "aa:bb:cc,ddd", "00:00:01"])
def test_parse_time_rejects_malformed(bad):
    with pytest.raises(ValueError, match="MELD time"):
        parse_time(bad)


def test_format_time_round_trips_to_the_millisecond():
    for seconds in (0.0, 1.0005, 59.999, 3723.004, 36000.25):
        assert parse_time(format_time(seconds)) == pytest.approx(round(seconds, 3))


def test_repair_text_fixes_cp1252_mojibake_and_leaves_clean_text():
    assert repair_text("I donâ€™t eat meat") == "I don\u2019t eat meat"
    assert repair_text("caf\u00e9 au lait") == "caf\u00e9 au lait"  # é alone is not mojibake
    assert repair_text("plain text") == "plain text"


def test_repair_text_repairs_runs_inside_mixed_text():
    # '’' is fine, 'â€”' is a broken em dash: the broken run is repaired, the rest kept.
    assert repair_text("it\u2019s here â€” now") == "it\u2019s here \u2014 now"


def test_read_meld_parses_layout(tmp_path):
    layout = MeldLayout.default(tmp_path)
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
    for split in layout.splits:
        (tmp_path / layout.csvs[split]).write_text(
            header + '1,"Oh, donâ€™t!",Ross,Surprise ,positive,4,0,1,2,"00:00:01,000","00:00:02,500"\n',
            encoding="utf-8")
    table = read_meld(layout)
    assert len(table) == 3
    row = table[table["meld_split"] == "test"].iloc[0]
    assert row["text"] == "Oh, don\u2019t!" and row["text_raw"] == "Oh, donâ€™t!"
    assert row["emotion"] == "surprise"
    assert row["end_s"] - row["start_s"] == pytest.approx(1.5)
    assert row["video_path"].endswith("output_repeated_splits_test/dia4_utt0.mp4")


def test_read_meld_names_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="train"):
        read_meld(MeldLayout.default(tmp_path), ("train",))
