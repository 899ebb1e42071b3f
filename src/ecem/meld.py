"""MELD.Raw: its directory layout, its CSVs, its times and its text damage.

MELD ships one CSV per split and one directory of `dia{D}_utt{U}.mp4` clips per split. Times are
`HH:MM:SS,mmm` episode times. Text is UTF-8 with curly quotes and some mojibake (UTF-8 bytes
decoded as cp1252, e.g. `â€™` for `’`); `repair_text` undoes the latter.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ecem.textfile import read_utf8

log = logging.getLogger(__name__)

CSV_COLUMNS = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
               "Utterance_ID", "Season", "Episode", "StartTime", "EndTime"]
MELD_COLUMNS = ["meld_split", "dialogue_id", "utterance_id", "speaker", "text_raw", "emotion",
                "sentiment", "season", "episode", "start_s", "end_s", "csv_line", "csv_status",
                "csv_detail"]
# The key of a MELD utterance in every table of the pipeline.
UTTERANCE_KEYS = ["meld_split", "dialogue_id", "utterance_id"]
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


class MeldCsvError(ValueError):
    """A MELD CSV cannot be read at all (empty, not UTF-8, not CSV, columns missing)."""


REJECTED_COLUMNS = ["meld_split", "csv_path", "line", "reason", "detail"]


def _read_csv_text(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The CSV as strings and the physical line each row starts on, or MeldCsvError naming the
    file and what is wrong with it."""
    text = read_utf8(path, MeldCsvError, "MELD's CSVs are UTF-8: re-save the file as UTF-8")
    if not text.strip():
        raise MeldCsvError(f"{path}: the file is empty")
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise MeldCsvError(f"{path}: not a readable CSV ({exc})") from None
    return table, _record_lines(text, len(table))


def _record_lines(text: str, n_rows: int) -> list[int]:
    """The physical line on which each of the `n_rows` data rows of CSV `text` starts.

    A quoted field may span lines (MELD utterances hold line breaks), so a row's line is not its
    record number plus one. Blank lines, which pandas skips, are skipped here too; should the two
    parsers still disagree, record numbers are given (and the disagreement logged).
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    starts, end = [], 0
    for row in reader:
        if len(row) > 1 or (row and row[0].strip()):
            starts.append(end + 1)
        end = reader.line_num
    starts = starts[1:]  # the header
    if len(starts) != n_rows:
        log.warning("CSV rows not matched to lines (%d rows, %d records): line numbers are records",
                    n_rows, len(starts))
        return [i + 2 for i in range(n_rows)]
    return starts


def _as_int(value: str) -> int | None:
    value = str(value).strip()
    return int(value) if re.fullmatch(r"[+-]?\d+", value) else None


def _as_time(value: str) -> float | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def _split_csv(layout: MeldLayout, split: str) -> tuple[Path, pd.DataFrame, list[int]]:
    """The split's CSV path, its rows as strings and the line each starts on; raises if the file
    is absent, unreadable or lacks MELD's columns."""
    path = layout.csv_path(split)
    if not path.exists():
        raise FileNotFoundError(f"MELD CSV for split {split!r} not found: {path}")
    df, lines = _read_csv_text(path)
    missing = [c for c in CSV_COLUMNS[1:] if c not in df.columns]
    if missing:
        raise MeldCsvError(f"{path} lacks MELD columns {missing}")
    return path, df, lines


def _rejection(split: str, path: Path, line: int, reason: str, detail: str) -> dict[str, Any]:
    """A REJECTED_COLUMNS row."""
    return {"meld_split": split, "csv_path": str(path), "line": line, "reason": reason, "detail": detail}


def _time_status(rec: dict[str, str], start: float | None, end: float | None, where: str) -> tuple[str, str]:
    """(`bad_times`, why) when a row's times are unreadable or reversed, else ("", "")."""
    if start is None or end is None:
        bad = [f"{c}={rec[c]!r}" for c, t in (("StartTime", start), ("EndTime", end)) if t is None]
        return "bad_times", f"{where}: not HH:MM:SS,mmm: {', '.join(bad)}"
    if end <= start:
        return "bad_times", f"{where}: EndTime {rec['EndTime']} is not after StartTime {rec['StartTime']}"
    return "", ""


def _meld_row(split: str, key: tuple[int, int], rec: dict[str, str], line: int, where: str) -> dict[str, Any]:
    """One keyed CSV row as a MELD_COLUMNS row, its times checked (`csv_status`)."""
    start, end = _as_time(rec["StartTime"]), _as_time(rec["EndTime"])
    status, detail = _time_status(rec, start, end, where)
    return {
        "meld_split": split, "dialogue_id": key[0], "utterance_id": key[1],
        "speaker": str(rec["Speaker"]).strip(), "text_raw": str(rec["Utterance"]),
        "emotion": str(rec["Emotion"]).strip().lower(),
        "sentiment": str(rec["Sentiment"]).strip().lower(),
        "season": _as_int(rec["Season"]), "episode": _as_int(rec["Episode"]),
        "start_s": float("nan") if start is None else start,
        "end_s": float("nan") if end is None else end,
        "csv_line": line, "csv_status": status, "csv_detail": detail,
    }


def _keyed_rows(split: str, path: Path, df: pd.DataFrame, lines: list[int]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The split's rows keyed by (dialogue, utterance), and its rejections, in file order.

    A row without integer ids is rejected (`bad_meld_row`); a row repeating an earlier key is
    rejected (`duplicate_row`) and the earlier, kept row is marked `duplicate_row` too.
    """
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    first: dict[tuple[int, int], dict[str, Any]] = {}  # key → the row that first gave it
    for line, rec in zip(lines, df.to_dict("records")):
        where = f"{path.name} line {line}"
        ids = {c: _as_int(rec[c]) for c in ("Dialogue_ID", "Utterance_ID")}
        bad_ids = [f"{c}={rec[c]!r}" for c, v in ids.items() if v is None]
        if bad_ids:
            rejected.append(_rejection(split, path, line, "bad_meld_row",
                                       f"{where}: not an integer: {', '.join(bad_ids)}"))
            continue
        key = (ids["Dialogue_ID"], ids["Utterance_ID"])
        if key in first:
            kept = first[key]
            rejected.append(_rejection(split, path, line, "duplicate_row",
                                       f"{where} repeats dia{key[0]}_utt{key[1]} of line {kept['csv_line']}"))
            kept["csv_status"] = "duplicate_row"
            kept["csv_detail"] = (f"{path.name} lines {kept['csv_line']} and {line} both give "
                                  f"dia{key[0]}_utt{key[1]}; which is right is unknown")
            continue
        first[key] = _meld_row(split, key, rec, line, where)
        rows.append(first[key])
    return rows, rejected


def _split_table(layout: MeldLayout, split: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A split's keyed rows as a table, with the repaired text and the clip path."""
    out = pd.DataFrame(rows, columns=MELD_COLUMNS)
    out["text"] = out["text_raw"].map(repair_text)
    out["video_path"] = [str(layout.video_path(split, d, u))
                         for d, u in zip(out["dialogue_id"], out["utterance_id"])]
    return out


def _one_table(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The splits' tables as one, typed (ids as int, season/episode as nullable Int64) and sorted
    by UTTERANCE_KEYS; empty splits are left out unless all are (their columns are kept)."""
    table = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    for col in ("dialogue_id", "utterance_id", "csv_line"):
        table[col] = table[col].astype(int)
    for col in ("season", "episode"):
        table[col] = table[col].astype("Int64")
    return table.sort_values(UTTERANCE_KEYS, ignore_index=True)


def read_meld_rows(layout: MeldLayout, splits: tuple[str, ...] | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read MELD's CSVs into one table keyed by (meld_split, dialogue_id, utterance_id), and the
    rows that could not be keyed.

    Table columns: meld_split, dialogue_id, utterance_id, speaker, text (repaired), text_raw,
    emotion, sentiment, season, episode, start_s, end_s, video_path, csv_line, csv_status,
    csv_detail. A row whose times are unreadable or reversed (`bad_times`) or whose key repeats
    an earlier row's (`duplicate_row`, the first kept with that status, the rest rejected) stays
    in the table with its status, so annotations still resolve to it and its samples are
    quarantined downstream with the reason. Rows whose dialogue or utterance id is not an integer
    cannot be placed: they come back in the second table (REJECTED_COLUMNS) with file and line.
    A file that cannot be read at all raises MeldCsvError naming it.
    """
    frames, rejected = [], []
    for split in splits or layout.splits:
        path, df, lines = _split_csv(layout, split)
        rows, split_rejected = _keyed_rows(split, path, df, lines)
        frames.append(_split_table(layout, split, rows))
        rejected.extend(split_rejected)
    return _one_table(frames), pd.DataFrame(rejected, columns=REJECTED_COLUMNS)


def read_meld(layout: MeldLayout, splits: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The keyed MELD table of `read_meld_rows` (rows that cannot be keyed left out)."""
    return read_meld_rows(layout, splits)[0]
