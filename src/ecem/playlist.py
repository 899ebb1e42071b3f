"""Prefix clips as ffconcat playlists: a few bytes per sample instead of a re-muxed mp4.

A stream-copied prefix clip repeats the bytes of every segment before it, so a dialogue's clips
take disk quadratic in its length. A playlist names the same segments in the same order; FFmpeg's
concat demuxer feeds the decoder the same packets a stream-copy concatenation would have written,
so every decoded frame is identical and the bytes on disk grow linearly.

Entries are paths relative to the playlist's folder, so ``results/`` can be moved.
:func:`playlist_entries` checks that a list names only relative plain files (what this module
writes) before it is opened; readers then hand FFmpeg the same entries as absolute ``file:`` URLs
in memory (:func:`concat_list`, opened with ``safe=0``), because FFmpeg would resolve relative
entries against the list's own path as a URL, where ``?`` or ``#`` in a folder name would start a
query or a fragment. The stream-copied prefix clips are assembled from such a list too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ecem.artifacts import atomic_path

PLAYLIST_SUFFIX = ".ffconcat"
HEADER = "ffconcat version 1.0"


def is_playlist(path: str | Path) -> bool:
    """Whether `path` names a prefix-clip playlist (by its suffix, as the dataset stage writes)."""
    return Path(path).suffix == PLAYLIST_SUFFIX


def _quote(name: str) -> str:
    return "'" + name.replace("'", "'\\''") + "'"


def write_playlist(paths: Sequence[str | Path], dst: Path) -> None:
    """Write an ffconcat list at `dst` naming `paths` relative to `dst`'s folder, atomically."""
    base = Path(dst).parent.resolve()
    lines = [HEADER] + [f"file {_quote(os.path.relpath(Path(p).resolve(), base))}" for p in paths]
    with atomic_path(dst) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def concat_list(paths: Sequence[str | Path]) -> str:
    """The text of an ffconcat list that FFmpeg reads from memory: each file by its absolute
    ``file:`` URL, quoted. FFmpeg's file protocol takes such a URL literally, so a folder name may
    hold quotes, spaces, ``$()``, backticks, ``:``, ``?``, ``#`` or any non-ASCII character; only
    a line break cannot be named in a list (FFmpeg reads it line by line): ValueError."""
    lines = [HEADER]
    for p in paths:
        url = "file:" + os.path.abspath(p)
        if "\n" in url or "\r" in url:
            raise ValueError(f"{url!r}: FFmpeg's concat lists cannot name a path with a line break")
        lines.append(f"file {_quote(url)}")
    return "\n".join(lines) + "\n"


def _unquote(text: str) -> str:
    out, i, quoted = [], 0, False
    while i < len(text):
        c = text[i]
        if c == "'":
            quoted = not quoted
        elif c == "\\" and not quoted and i + 1 < len(text):
            i += 1
            out.append(text[i])
        else:
            out.append(c)
        i += 1
    return "".join(out)


def playlist_entries(path: str | Path) -> list[Path]:
    """The files a playlist names, resolved against its folder.

    Raises ValueError for anything this module would not have written: no header, a directive
    other than ``file``, an absolute path or a protocol (``x:``) — what ``safe=0`` would let
    through.
    """
    lines = [ln.strip() for ln in Path(path).read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines or lines[0] != HEADER:
        raise ValueError(f"{path}: not an ffconcat playlist (first line must be {HEADER!r})")
    base = Path(path).parent
    entries = []
    for ln in lines[1:]:
        directive, _, arg = ln.partition(" ")
        name = _unquote(arg.strip())
        if directive != "file" or not name or os.path.isabs(name) or ":" in name:
            raise ValueError(f"{path}: unexpected playlist line {ln!r} (only relative `file` entries)")
        entries.append(base / name)
    return entries
