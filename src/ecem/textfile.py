"""Reading the text files users hand us (MELD's CSVs, the ECEM JSON) with errors that name them."""

from __future__ import annotations

from pathlib import Path


def read_utf8(path: str | Path, error: type[ValueError], expected: str) -> str:
    """The file's text (a UTF-8 BOM dropped). Not UTF-8 → `error` naming the file, the first bad
    byte and its line, and `expected` (what the file should be), in one line."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
                    f"{expected}") from None
