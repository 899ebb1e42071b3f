"""MELD times, text repair and CSV reading."""

import pytest

from ecem.meld import MeldCsvError, MeldLayout, format_time, parse_time, read_meld, read_meld_rows, repair_text


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


HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"


def _row(sr, dia, utt, start="00:00:01,000", end="00:00:02,500", text="Hi.") -> str:
    return f'{sr},"{text}",Ross,joy,positive,{dia},{utt},1,2,"{start}","{end}"\n'


def test_read_meld_parses_layout(tmp_path):
    layout = MeldLayout.default(tmp_path)
    header = HEADER
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


def test_csv_lines_are_physical_lines_after_multi_line_utterances_and_blank_lines(tmp_path):
    layout = MeldLayout.default(tmp_path)
    (tmp_path / layout.csvs["train"]).write_text(HEADER + "".join([
        _row(1, 0, 0, text="two\nlines"),       # lines 2-3
        "\n",                                  # line 4, blank
        _row(2, 0, 1, text="three\r\nlines\nhere"),  # lines 5-7
        _row(3, 0, 2, start="0:38.997"),       # line 8
    ]), encoding="utf-8", newline="")
    table, _ = read_meld_rows(layout, ("train",))
    assert list(table["csv_line"]) == [2, 5, 8] and list(table["text"])[0] == "two\nlines"
    assert "line 8" in table["csv_detail"].iloc[2]


def test_read_meld_names_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="train"):
        read_meld(MeldLayout.default(tmp_path), ("train",))


def test_bad_rows_are_kept_with_a_status_or_rejected_with_file_and_line(tmp_path):
    layout = MeldLayout.default(tmp_path)
    (tmp_path / layout.csvs["train"]).write_text(HEADER + "".join([
        _row(1, 0, 0),
        _row(2, 0, 1, start="0:38.997"),                                # bad time
        _row(3, 0, 2, start="00:00:05,000", end="00:00:04,000"),        # end before start
        _row(4, "0", "3a"),                                              # id not an integer
        _row(5, 0, 4, text="first"), _row(6, 0, 4, text="second"),      # duplicate key
    ]), encoding="utf-8")
    table, rejected = read_meld_rows(layout, ("train",))
    status = dict(zip(table["utterance_id"], table["csv_status"]))
    assert status == {0: "", 1: "bad_times", 2: "bad_times", 4: "duplicate_row"}
    detail = dict(zip(table["utterance_id"], table["csv_detail"]))
    assert "line 3" in detail[1] and "'0:38.997'" in detail[1]
    assert "not after StartTime" in detail[2]
    assert table.set_index("utterance_id").loc[4, "text"] == "first"
    assert list(rejected["reason"]) == ["bad_meld_row", "duplicate_row"]
    assert list(rejected["line"]) == [5, 7]
    assert "Utterance_ID='3a'" in rejected["detail"].iloc[0]
    assert len(read_meld(layout, ("train",))) == 4


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (HEADER.encode() + _row(1, 0, 0, text="Don\u2019t").encode("utf-8").replace(
        "\u2019".encode(), b"\x92"), r"not UTF-8 \(byte 0x92 on line 2\)"),
    (b"Sr No.,Utterance\n1,hi\n", "lacks MELD columns"),
])
def test_unreadable_csv_is_one_line_naming_the_file(tmp_path, content, message):
    layout = MeldLayout.default(tmp_path)
    (tmp_path / layout.csvs["train"]).write_bytes(content)
    with pytest.raises(MeldCsvError, match=message) as err:
        read_meld_rows(layout, ("train",))
    assert "train_sent_emo.csv" in str(err.value) and "\n" not in str(err.value)
