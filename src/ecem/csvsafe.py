"""CSV files people open in a spreadsheet program, written so no cell runs as a formula.

Raters open the human-evaluation sheets, and readers the result tables, in Excel, LibreOffice or
Google Sheets, which evaluate a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula (``=HYPERLINK(…)``, ``+cmd|' /C calc'!A0``). Such text reaches the
sheets from MELD speakers and utterances, ECEM causes and generated explanations. Following
OWASP's CSV-injection guidance, such a cell is written with a leading apostrophe, which the
programs show as text; cells that are plain numbers (``-0.25``) are numbers, not formulas, and
stay as they are. A cell that already starts with an apostrophe gets one more, so :func:`read_csv`
can remove exactly one again: every string survives the round trip. Lines end in CRLF (RFC 4180,
what spreadsheet programs write), which also makes the writer quote a cell holding a lone carriage
return instead of letting it break the row.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def neutralise(value: Any) -> Any:
    """`value` as a cell no spreadsheet evaluates (see the module): strings only."""
    if not isinstance(value, str) or not value or _NUMBER.fullmatch(value):
        return value
    return _QUOTE + value if value.startswith((*FORMULA_START, _QUOTE)) else value


def restore(value: Any) -> Any:
    """The string :func:`neutralise` was given."""
    quoted = isinstance(value, str) and len(value) > 1 and value[0] == _QUOTE
    return value[1:] if quoted and value[1] in (*FORMULA_START, _QUOTE) else value


def _text_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write `frame` (no index) as a CSV safe to open in a spreadsheet program, atomically."""
    from ecem.artifacts import atomic_path

    safe = frame.copy()
    for column in _text_columns(safe):
        safe[column] = safe[column].map(neutralise)
    with atomic_path(path) as tmp:
        safe.to_csv(tmp, index=False, lineterminator="\r\n")


def read_csv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv` (or filled in from one) with its strings restored."""
    frame = pd.read_csv(path, **kwargs)
    for column in _text_columns(frame):
        frame[column] = frame[column].map(restore)
    return frame
