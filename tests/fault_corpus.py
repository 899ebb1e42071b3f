"""A corpus of planted faults, generated from the demo corpus (nothing downloaded).

`plant_faults(demo_root, demo_annotations, out_dir)` copies the demo's MELD.Raw and ECEM JSON
and plants one fault per case that a real MELD/ECEM can show. `EXPECTED` says what the dataset
stage must make of each: a status with its reason, never a crash and never silence. Clips that
only differ from their dialogue's format (`EXPECTED_ADJUSTMENTS`) render, adjusted and named.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

from ecem.ffmpeg import run_ffmpeg

# (meld split, dialogue, utterance) → expected utterances.parquet status
EXPECTED_UTTERANCES = {
    ("train", 0, 2): "ok",                 # 1280×720 among 320×240 clips
    ("train", 0, 4): "ok",                 # 30 fps among 23.976 fps clips (re-timed)
    ("train", 0, 5): "bad_times",          # EndTime before StartTime
    ("train", 1, 0): "bad_times",          # StartTime "0:38.997"
    ("train", 2, 0): "duplicate_row",      # its CSV row appears twice
    ("train", 2, 2): "duration_mismatch",  # the clip is 10× longer than its CSV times
    ("test", 0, 2): "corrupt",             # faststart file cut in half
    ("train", 3, 2): "ok",                 # a 90° display-rotation tag (as phones write)
    ("train", 4, 3): "ok",                 # variable frame rate: half its frames dropped after 1 s
    ("train", 5, 0): "ok",                 # dialogue 5: every clip 321×241 (x264 4:2:0 needs even)
}
# (meld split, dialogue, utterance) → segments.parquet adjustments, for every adjusted segment
EXPECTED_ADJUSTMENTS = {
    ("train", 0, 2): ["fitted"],                    # 1280×720 into 320×240, letterboxed
    ("train", 0, 4): ["resampled"],                 # 30 fps into 23.976 fps
    ("train", 3, 2): ["rotated", "fitted"],         # upright 240×320 into 320×240, pillarboxed
    ("train", 4, 3): ["resampled"],
    **{("train", 5, u): ["padded_to_even"] for u in range(5)},
}
# CSV cells a spreadsheet would run as formulas (test dialogue 1, utterance 0: context only)
FORMULA_SPEAKER, FORMULA_TEXT = '=HYPERLINK("http://example.com","x")', "+cmd|' /C calc'!A0"
MULTI_LINE_TEXT = "Sit down.\nNo, really, sit down."  # train dialogue 3, utterance 0 (context)
LONG_CAUSE_SAMPLE, LONG_CAUSE_CHARS = "train/dia4_utt1", 100_000
# sample id → (clips.parquet status, reason) of the samples in dialogues the faults touch (the
# demo's other dialogues have none: all their samples are ok)
EXPECTED_SAMPLES = {
    "train/dia0_utt1": ("ok", ""),
    "train/dia0_utt3": ("ok", ""),
    "train/dia0_utt4": ("ok", ""),
    "train/dia0_utt5": ("quarantined", "bad_times"),
    "train/dia1_utt2": ("ok", ""),         # its context utterances 0 (bad times) and 1 skipped
    "train/dia2_utt2": ("quarantined", "duration_mismatch"),
    "train/dia2_utt3": ("quarantined", "missing"),     # the demo's missing clip
    "test/dia0_utt2": ("quarantined", "corrupt"),
    **{f"train/dia3_utt{u}": ("ok", "") for u in range(1, 6)},  # the rotated clip is context or target
    **{f"train/dia4_utt{u}": ("ok", "") for u in range(1, 6)},  # the variable-rate clip too
    **{f"train/dia5_utt{u}": ("ok", "") for u in range(1, 5)},  # odd-sized: all rendered
}
# quarantine.parquet reasons (annotation records and MELD rows) → count
EXPECTED_QUARANTINE = {
    "neutral": 1, "unmatched": 1,          # the demo's own
    "unknown_emotion": 1, "malformed": 3, "bad_meld_row": 1, "duplicate_row": 1,  # malformed: + dev/0_1.mp4
}


def _ffmpeg_reencode(src: Path, dst: Path, *args: str, before: tuple[str, ...] = ()) -> None:
    tmp = dst.with_suffix(".tmp.mp4")
    run_ffmpeg([*before, "-i", str(src), *args, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
                "-c:a", "aac", str(tmp)])
    tmp.replace(dst)


def _edit_csv(path: Path, edit) -> None:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows = edit(rows)
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


def _row(rows: list[list[str]], dia: int, utt: int) -> int:
    header = rows[0]
    d, u = header.index("Dialogue_ID"), header.index("Utterance_ID")
    return next(i for i, r in enumerate(rows) if i and r[d] == str(dia) and r[u] == str(utt))


def plant_faults(demo_root: Path, demo_annotations: Path, out_dir: Path) -> tuple[Path, Path]:
    """Copy the demo corpus to `out_dir` and plant the faults above; return (MELD root, JSON)."""
    root = out_dir / "MELD.Raw"
    shutil.copytree(demo_root, root)
    train, test = root / "train_splits", root / "output_repeated_splits_test"

    _ffmpeg_reencode(train / "dia0_utt2.mp4", train / "dia0_utt2.mp4", "-vf", "scale=1280:720")
    _ffmpeg_reencode(train / "dia0_utt4.mp4", train / "dia0_utt4.mp4", "-r", "30")
    _ffmpeg_reencode(train / "dia2_utt2.mp4", train / "dia2_utt2.mp4", before=("-stream_loop", "9"))
    rotated = out_dir / "rotated.mp4"  # the same frames, tagged to be shown turned 90°
    run_ffmpeg(["-display_rotation", "90", "-i", str(train / "dia3_utt2.mp4"), "-c", "copy", str(rotated)])
    rotated.replace(train / "dia3_utt2.mp4")
    _ffmpeg_reencode(train / "dia4_utt3.mp4", train / "dia4_utt3.mp4",
                     "-vf", "select='lt(t\\,1)+not(mod(n\\,2))'", "-fps_mode", "passthrough")
    for clip in sorted(train.glob("dia5_utt*.mp4")):
        _ffmpeg_reencode(clip, clip, "-vf", "scale=321:241", "-pix_fmt", "yuv444p")
    cut = test / "dia0_utt2.mp4"
    run_ffmpeg(["-i", str(cut), "-c", "copy", "-movflags", "+faststart", str(out_dir / "fs.mp4")])
    data = (out_dir / "fs.mp4").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    (out_dir / "fs.mp4").unlink()

    def edit_train(rows: list[list[str]]) -> list[list[str]]:
        h = rows[0]
        start, end = h.index("StartTime"), h.index("EndTime")
        r = rows[_row(rows, 0, 5)]
        r[start], r[end] = r[end], r[start]
        rows[_row(rows, 1, 0)][start] = "0:38.997"
        rows.insert(_row(rows, 2, 0) + 1, list(rows[_row(rows, 2, 0)]))
        bad = list(rows[_row(rows, 1, 2)])
        bad[h.index("Utterance_ID")] = "3a"
        rows.append(bad)
        rows[_row(rows, 3, 0)][h.index("Utterance")] = MULTI_LINE_TEXT
        return rows

    def edit_test(rows: list[list[str]]) -> list[list[str]]:
        h = rows[0]
        row = rows[_row(rows, 1, 0)]
        row[h.index("Speaker")], row[h.index("Utterance")] = FORMULA_SPEAKER, FORMULA_TEXT
        return rows

    _edit_csv(root / "train_sent_emo.csv", edit_train)
    _edit_csv(root / "test_sent_emo.csv", edit_test)

    records = json.loads(demo_annotations.read_text(encoding="utf-8"))
    excited = copy.deepcopy(records[0])
    excited["id"] = 100
    excited["conversations"][0]["value"] = excited["conversations"][0]["value"].replace(" joy ", " excited ")
    other_split = copy.deepcopy(next(r for r in records if r["video"] == "0_1.mp4"))
    other_split.update(id=103, video="dev/0_1.mp4")  # MELD dev's clip: not train dialogue 0
    long_cause = next(r for r in records if r["video"] == "4_1.mp4")
    answer = long_cause["conversations"][1]["value"] + " "
    repeated = answer * (LONG_CAUSE_CHARS // len(answer) + 1)
    long_cause["conversations"][1]["value"] = repeated[:LONG_CAUSE_CHARS]
    records += [excited,
                {"id": 101, "video": "0_3.mp4", "conversations": "hello"},
                {"id": 102, "video": "0_3.mp4", "conversations": ["hi", "there"]},
                other_split]
    annotations = out_dir / "ecem.json"
    annotations.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return root, annotations
