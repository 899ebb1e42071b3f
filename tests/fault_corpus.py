"""A corpus of planted faults, generated from the demo corpus (nothing downloaded).

`plant_faults(demo_root, demo_annotations, out_dir)` copies the demo's MELD.Raw and ECEM JSON
and plants one fault per case that a real MELD/ECEM can show. `EXPECTED` says what the dataset
stage must make of each: a status with its reason, never a crash and never silence.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

from ecem.media import run_ffmpeg

# (meld split, dialogue, utterance) → expected utterances.parquet status
EXPECTED_UTTERANCES = {
    ("train", 0, 2): "ok",                 # 1280×720 among 320×240 clips
    ("train", 0, 4): "ok",                 # 30 fps among 23.976 fps clips (re-timed)
    ("train", 0, 5): "bad_times",          # EndTime before StartTime
    ("train", 1, 0): "bad_times",          # StartTime "0:38.997"
    ("train", 2, 0): "duplicate_row",      # its CSV row appears twice
    ("train", 2, 2): "duration_mismatch",  # the clip is 10× longer than its CSV times
    ("test", 0, 2): "corrupt",             # faststart file cut in half
}
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
}
# quarantine.parquet reasons (annotation records and MELD rows) → count
EXPECTED_QUARANTINE = {
    "neutral": 1, "unmatched": 1,          # the demo's own
    "unknown_emotion": 1, "malformed": 2, "bad_meld_row": 1, "duplicate_row": 1,
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
        return rows

    _edit_csv(root / "train_sent_emo.csv", edit_train)

    records = json.loads(demo_annotations.read_text(encoding="utf-8"))
    excited = copy.deepcopy(records[0])
    excited["id"] = 100
    excited["conversations"][0]["value"] = excited["conversations"][0]["value"].replace(" joy ", " excited ")
    records += [excited,
                {"id": 101, "video": "0_3.mp4", "conversations": "hello"},
                {"id": 102, "video": "0_3.mp4", "conversations": ["hi", "there"]}]
    annotations = out_dir / "ecem.json"
    annotations.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return root, annotations
