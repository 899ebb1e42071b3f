"""MELD.Raw: its directory layout, its CSVs, its times and its text damage.

MELD ships one CSV per split and one directory of `dia{D}_utt{U}.mp4` clips per split. Times are
`HH:MM:SS,mmm` episode times. Text is UTF-8 with curly quotes and some mojibake (UTF-8 bytes
decoded as cp1252, e.g. `â€™` for `’`); `repair_text` undoes the latter.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd

CSV_COLUMNS = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
               "Utterance_ID", "Season", "Episode", "StartTime", "EndTime"]
EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
SPLITS = ("train", "dev", "test")
_DEFAULT_VIDEO_DIRS = {"train": "train_splits", "dev": "dev_splits_complete",
                       "test": "output_repeated_splits_test"}
_TIME = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*$")
_MOJIBAKE_MARKERS = ("â€", "Ã", "Â")


@dataclasses.dataclass(frozen=True)
class MeldLayout:
    """Where MELD's CSVs and clips live under its root directory."""

    root: Path
    csvs: dict[str, str]
    video_dirs: dict[str, str]

    @classmethod
    def default(cls, root: str | Path) -> MeldLayout:
        return cls(Path(root), {s: f"{s}_sent_emo.csv" for s in SPLITS}, dict(_DEFAULT_VIDEO_DIRS))

    @classmethod
    def from_config(cls, meld_cfg: dict) -> MeldLayout:
        """From the config's `meld` section (`root`, optional per-split `csv`/`videos`)."""
        layout = cls.default(meld_cfg["root"])
        for split, entry in (meld_cfg.get("splits") or {}).items():
            layout.csvs[split] = entry.get("csv", layout.csvs[split])
            layout.video_dirs[split] = entry.get("videos", layout.video_dirs[split])
        return layout

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.csvs)

    def csv_path(self, split: str) -> Path:
        return self.root / self.csvs[split]

    def video_dir(self, split: str) -> Path:
        return self.root / self.video_dirs[split]

    def video_path(self, split: str, dialogue_id: int, utterance_id: int) -> Path:
        return self.video_dir(split) / f"dia{dialogue_id}_utt{utterance_id}.mp4"


def parse_time(value: str) -> float:
    """`HH:MM:SS,mmm` → seconds. Raises ValueError naming the bad value."""
    m = _TIME.match(str(value))
    if not m:
        raise ValueError(f"not a MELD time (HH:MM:SS,mmm): {value!r}")
    h, mnt, s, ms = m.groups()
    return int(h) * 3600 + int(mnt) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


def format_time(seconds: float) -> str:
    """Seconds → `HH:MM:SS,mmm` (rounded to the millisecond)."""
    total_ms = int(round(seconds * 1000))
    h, rest = divmod(total_ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def repair_text(text: str) -> str:
    """Undo cp1252 mojibake (`donâ€™t` → `don’t`) where the round trip is clean; else unchanged."""
    if not any(marker in text for marker in _MOJIBAKE_MARKERS):
        return text
    try:
        return text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        # Mixed text: repair each damaged run separately.
        def fix(match: re.Match[str]) -> str:
            try:
                return match.group(0).encode("cp1252").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                return match.group(0)

        return re.sub(r"[\u00c0-\u00ff][\u0080-\u02ff\u2000-\u20ff]{1,3}", fix, text)


def read_meld(layout: MeldLayout, splits: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Read MELD's CSVs into one table keyed by (meld_split, dialogue_id, utterance_id).

    Columns: meld_split, dialogue_id, utterance_id, speaker, text (repaired), text_raw,
    emotion, sentiment, season, episode, start_s, end_s, video_path.
    """
    frames = []
    for split in splits or layout.splits:
        path = layout.csv_path(split)
        if not path.exists():
            raise FileNotFoundError(f"MELD CSV for split {split!r} not found: {path}")
        df = pd.read_csv(path, encoding="utf-8", dtype={"Utterance": str, "Speaker": str})
        missing = [c for c in CSV_COLUMNS[1:] if c not in df.columns]
        if missing:
            raise ValueError(f"{path} lacks MELD columns {missing}")
        out = pd.DataFrame({
            "meld_split": split,
            "dialogue_id": df["Dialogue_ID"].astype(int),
            "utterance_id": df["Utterance_ID"].astype(int),
            "speaker": df["Speaker"].fillna("").str.strip(),
            "text_raw": df["Utterance"].fillna(""),
            "emotion": df["Emotion"].str.strip().str.lower(),
            "sentiment": df["Sentiment"].str.strip().str.lower(),
            "season": df["Season"].astype(int),
            "episode": df["Episode"].astype(int),
            "start_s": df["StartTime"].map(parse_time),
            "end_s": df["EndTime"].map(parse_time),
        })
        out["text"] = out["text_raw"].map(repair_text)
        out["video_path"] = [str(layout.video_path(split, d, u))
                             for d, u in zip(out["dialogue_id"], out["utterance_id"])]
        frames.append(out)
    table = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    return table.sort_values(["meld_split", "dialogue_id", "utterance_id"], ignore_index=True)
