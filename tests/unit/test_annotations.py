"""ECEM annotation parsing and resolution against MELD."""

import re

import numpy as np
import pandas as pd
import pytest

from ecem.dataset.annotations import (
    AnnotationFileError,
    load_annotations,
    parse_record,
    parse_video_name,
    resolve_annotations,
    sample_id,
)


def meld_rows(rows):
    return pd.DataFrame([
        {"meld_split": s, "dialogue_id": d, "utterance_id": u, "speaker": spk, "text": t,
         "emotion": e} for s, d, u, spk, t, e in rows
    ])


MELD = meld_rows([
    ("train", 5, 0, "Ross", "Hi everyone.", "neutral"),
    ("train", 5, 1, "Rachel", "Where is my coffee?", "anger"),
    ("train", 5, 2, "Ross", "I drank it, sorry.", "sadness"),
    ("train", 5, 3, "Joey", "Yeah.", "neutral"),
    ("train", 5, 4, "Chandler", "Yeah.", "joy"),
    ("test", 5, 0, "Phoebe", "Smelly cat!", "joy"),
])


def record(video, speaker, text, emotion="anger", cause="Because."):
    return {"id": 1, "video": video, "conversations": [
        {"from": "human", "value": f"<video>\nExplain why the emotion of this statement is {emotion} <{speaker}: {text}>"},
        {"from": "gpt", "value": cause}]}


def resolve(records, **kw):
    args = {"min_score": 0.75, "speaker_weight": 0.25, "drop_neutral": True, **kw}
    return resolve_annotations(records, MELD, **args)


@pytest.mark.parametrize("name,expected", [("480_5.mp4", ("train", 480, 5)),
                                           ("t_254_15.mp4", ("test", 254, 15)),
                                           ("videos/3_0.mp4", ("train", 3, 0)),
                                           ("train_splits/3_0.mp4", ("train", 3, 0)),
                                           ("devices/3_0.mp4", ("train", 3, 0)),
                                           ("output_repeated_splits_test/t_2_1.mp4", ("test", 2, 1))])
def test_parse_video_name(name, expected):
    assert parse_video_name(name) == expected


def test_sample_id_is_split_dialogue_and_utterance():
    assert sample_id("train", 480, 5) == "train/dia480_utt5"
    assert sample_id("dev", np.int64(0), np.int64(12)) == "dev/dia0_utt12"  # as read from a table


@pytest.mark.parametrize("name", ["480-5.mp4", "d_1_2.mp4", "5.mp4", "1_2.avi",
                                  "dev/0_1.mp4", "dev_splits_complete/0_1.mp4", "test/0_1.mp4",
                                  "train/t_1_2.mp4"])
def test_parse_video_name_rejects(name):
    with pytest.raises(ValueError):
        parse_video_name(name)


def test_parse_record_reads_emotion_speaker_text_and_cause():
    rec = parse_record(record("5_1.mp4", "Rachel", "Where is my coffee?", cause="  Ross drank it. "))
    assert (rec["emotion"], rec["speaker"], rec["annotation_text"], rec["cause"]) == (
        "anger", "Rachel", "Where is my coffee?", "Ross drank it.")


def test_exact_match():
    res, quarantine = resolve([record("5_1.mp4", "Rachel", "Where is my coffee ?")])
    assert res.loc[0, "match"] == "exact" and res.loc[0, "sample_id"] == "train/dia5_utt1"
    assert quarantine.empty


def test_offset_id_resolves_to_the_utterance_that_matches():
    res, _ = resolve([record("5_1.mp4", "Ross", "I drank it, sorry.", emotion="sadness")])
    assert res.loc[0, "utterance_id"] == 2 and res.loc[0, "match"] == "shifted"
    assert res.loc[0, "named_utterance_id"] == 1


def test_fuzzy_text_at_named_id():
    res, _ = resolve([record("5_2.mp4", "Ross", "I drank it sorry man", emotion="sadness")])
    assert res.loc[0, "match"] == "fuzzy" and res.loc[0, "utterance_id"] == 2
    assert 0.75 <= res.loc[0, "match_score"] < 1


def test_tie_goes_to_the_nearest_id():
    # "Yeah." is said at utt 3 (Joey) and utt 4 (Chandler); the annotation names utt 2 and a
    # third speaker, so both tie on text and speaker: the nearer id (3) wins.
    res, _ = resolve([record("5_2.mp4", "Monica", "Yeah.", emotion="joy")], min_score=0.5)
    assert res.loc[0, "utterance_id"] == 3


def test_unmatched_is_quarantined_with_reason():
    res, quarantine = resolve([record("5_1.mp4", "Gunther", "We were on a break!")])
    assert res.empty
    assert quarantine.loc[0, "reason"] == "unmatched" and "< 0.75" in quarantine.loc[0, "detail"]


def test_neutral_dropped_unless_configured():
    rec = record("5_0.mp4", "Ross", "Hi everyone.", emotion="neutral")
    res, quarantine = resolve([rec])
    assert res.empty and quarantine.loc[0, "reason"] == "neutral"
    res, _ = resolve([rec], drop_neutral=False)
    assert res.loc[0, "emotion"] == "neutral"


def test_malformed_missing_dialogue_and_duplicates_are_quarantined():
    bad = {"id": 9, "video": "5_1.mp4", "conversations": [{"from": "human", "value": "hello"}]}
    records = [bad, record("99_0.mp4", "Ross", "Hi."), record("t_5_0.mp4", "Phoebe", "Smelly cat!", "joy"),
               record("t_5_0.mp4", "Phoebe", "Smelly cat!", "joy")]
    res, quarantine = resolve(records)
    assert list(res["sample_id"]) == [sample_id("test", 5, 0)]
    assert list(quarantine["reason"]) == ["malformed", "no_dialogue", "duplicate"]


@pytest.mark.parametrize("bad,why", [
    ({"id": 7, "video": "5_1.mp4", "conversations": "hello"}, "'conversations' is str"),
    ({"id": 7, "video": "5_1.mp4", "conversations": ["hi", "there"]}, r"conversations\[0\] is str"),
    ({"id": 7, "video": "5_1.mp4", "conversations": [{"from": "human", "value": 3}]}, "not a string"),
    ("just a string", "not an object"),
])
def test_malformed_turns_are_quarantined_and_the_rest_resolve(bad, why):
    good = record("5_1.mp4", "Rachel", "Where is my coffee?")
    res, quarantine = resolve([bad, good])
    assert list(res["sample_id"]) == ["train/dia5_utt1"]
    assert list(quarantine["reason"]) == ["malformed"]
    assert re.search(why, quarantine["detail"].iloc[0])


def test_emotion_outside_melds_seven_is_quarantined_not_passed_on():
    res, quarantine = resolve([record("5_1.mp4", "Rachel", "Where is my coffee?", emotion="excited")])
    assert res.empty
    assert list(quarantine["reason"]) == ["unknown_emotion"] and "'excited'" in quarantine["detail"].iloc[0]


@pytest.mark.parametrize("content,message", [
    (b"[]", "no annotations"),
    (b'[{"id": 1, "video": "5_1.mp4", "conversa', "not valid JSON .* is the file complete"),
    (b'[{"id": 1, "video": "caf\xe9.mp4"}]', r"not UTF-8 \(byte 0xe9 on line 1\)"),
    (b'{"id": 1}', "expected a JSON list"),
])
def test_unusable_annotation_file_is_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "ecem.json"
    path.write_bytes(content)
    with pytest.raises(AnnotationFileError, match=message) as err:
        load_annotations(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
