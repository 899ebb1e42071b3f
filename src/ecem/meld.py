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
        path = layout.csv_path(split)
        if not path.exists():
            raise FileNotFoundError(f"MELD CSV for split {split!r} not found: {path}")
        df, lines = _read_csv_text(path)
        missing = [c for c in CSV_COLUMNS[1:] if c not in df.columns]
        if missing:
            raise MeldCsvError(f"{path} lacks MELD columns {missing}")
        rows: list[dict] = []
        first: dict[tuple[int, int], dict] = {}  # key → the row that first gave it
        for line, rec in zip(lines, df.to_dict("records")):
            ids = {c: _as_int(rec[c]) for c in ("Dialogue_ID", "Utterance_ID")}
            bad_ids = [f"{c}={rec[c]!r}" for c, v in ids.items() if v is None]
            if bad_ids:
                rejected.append({"meld_split": split, "csv_path": str(path), "line": line,
                                 "reason": "bad_meld_row",
                                 "detail": f"{path.name} line {line}: not an integer: {', '.join(bad_ids)}"})
                continue
            start, end = _as_time(rec["StartTime"]), _as_time(rec["EndTime"])
            status, detail = "", ""
            if start is None or end is None:
                bad = [f"{c}={rec[c]!r}" for c, t in (("StartTime", start), ("EndTime", end)) if t is None]
                status, detail = "bad_times", f"{path.name} line {line}: not HH:MM:SS,mmm: {', '.join(bad)}"
            elif end <= start:
                status, detail = "bad_times", (f"{path.name} line {line}: EndTime {rec['EndTime']} is not "
                                               f"after StartTime {rec['StartTime']}")
            key = (ids["Dialogue_ID"], ids["Utterance_ID"])
            if key in first:
                kept = first[key]
                rejected.append({"meld_split": split, "csv_path": str(path), "line": line,
                                 "reason": "duplicate_row",
                                 "detail": f"{path.name} line {line} repeats dia{key[0]}_utt{key[1]} "
                                           f"of line {kept['csv_line']}"})
                kept["csv_status"] = "duplicate_row"
                kept["csv_detail"] = (f"{path.name} lines {kept['csv_line']} and {line} both give "
                                      f"dia{key[0]}_utt{key[1]}; which is right is unknown")
                continue
            first[key] = {
                "meld_split": split, "dialogue_id": key[0], "utterance_id": key[1],
                "speaker": str(rec["Speaker"]).strip(), "text_raw": str(rec["Utterance"]),
                "emotion": str(rec["Emotion"]).strip().lower(),
                "sentiment": str(rec["Sentiment"]).strip().lower(),
                "season": _as_int(rec["Season"]), "episode": _as_int(rec["Episode"]),
                "start_s": float("nan") if start is None else start,
                "end_s": float("nan") if end is None else end,
                "csv_line": line, "csv_status": status, "csv_detail": detail,
            }
            rows.append(first[key])
        out = pd.DataFrame(rows, columns=MELD_COLUMNS)
        out["text"] = out["text_raw"].map(repair_text)
        out["video_path"] = [str(layout.video_path(split, d, u))
                             for d, u in zip(out["dialogue_id"], out["utterance_id"])]
        frames.append(out)
    table = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    for col in ("dialogue_id", "utterance_id", "csv_line"):
        table[col] = table[col].astype(int)
    for col in ("season", "episode"):
        table[col] = table[col].astype("Int64")
    table = table.sort_values(UTTERANCE_KEYS, ignore_index=True)
    return table, pd.DataFrame(rejected, columns=REJECTED_COLUMNS)


def read_meld(layout: MeldLayout, splits: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The keyed MELD table of `read_meld_rows` (rows that cannot be keyed left out)."""
    return read_meld_rows(layout, splits)[0]
