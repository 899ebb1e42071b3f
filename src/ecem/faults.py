"""Faults of the machine versus faults of the data.

A stage quarantines a sample only for a fault of its *input* (a corrupt clip, a missing file):
that is a fact about the data, recorded once and kept. A fault of the *machine* — a full disk,
an I/O error, a read-only or unreadable file system, memory running out, a subprocess killed by
the system, a missing executable — says nothing about the data and goes away when the machine is
fixed. Quarantining for it would turn a moment of full disk into a permanent loss that the next
run trusts ("Nothing to be done"). Such faults therefore fail the job with an
:class:`EnvironmentFault` (one line: the cause and the path), Snakemake removes the job's
outputs, and the rerun after the fix starts clean.

Every ``except`` that quarantines goes through :func:`data_fault`, which returns the reason for
a data fault and raises :class:`EnvironmentFault` for a fault of the machine.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

# errno values that describe the machine, not the file's content.
ENVIRONMENT_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EMFILE, errno.ENFILE,
    errno.EACCES, errno.EPERM, errno.ESTALE, errno.EFBIG, errno.ENOTCONN, errno.ETIMEDOUT,
})
# What tools print for them (FFmpeg's messages are the C library's strerror texts).
ENVIRONMENT_MESSAGES = tuple(sorted({os.strerror(e) for e in ENVIRONMENT_ERRNOS}))
# Signals sent by the system or a person (the OOM killer sends SIGKILL), or raised by a machine
# limit; a crash signal (SIGSEGV, SIGABRT, SIGFPE) on one input is left to the caller as a fault
# of that input.
ENVIRONMENT_SIGNALS = frozenset({
    signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGXCPU,
    signal.SIGXFSZ, signal.SIGBUS, signal.SIGILL, signal.SIGPIPE,
})


class EnvironmentFault(RuntimeError):
    """The machine failed the job (not the data): `cause` and the `path` it concerns.

    Its message is one line; rule scripts (:func:`ecem.logs.rule_logging`) print it without a
    traceback and exit non-zero.
    """

    def __init__(self, cause: str, path: str | Path | None, detail: str = "") -> None:
        self.cause, self.path, self.detail = cause, None if path is None else str(path), detail
        where = f": {self.path}" if self.path else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(" ".join(f"{cause}{where}{extra}".split()))


def environment_cause(exc: BaseException) -> str | None:
    """The machine fault behind `exc` (e.g. ``No space left on device``), or None when `exc`
    may be a fault of the data. Recognised by errno (Python's and PyAV's OSErrors carry it; Arrow
    puts it in the message), or as running out of memory."""
    if isinstance(exc, EnvironmentFault):
        return exc.cause
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError):
        if exc.errno in ENVIRONMENT_ERRNOS:
            return os.strerror(exc.errno)
        return environment_message(str(exc))
    return None


def environment_message(text: str) -> str | None:
    """The first machine-fault message (a strerror text) found in a tool's output, or None."""
    return next((m for m in ENVIRONMENT_MESSAGES if m in text), None)


def signal_cause(returncode: int) -> str | None:
    """Why a subprocess that exited with `returncode` (< 0: killed by that signal) was stopped by
    the machine, or None (a normal exit, or a crash that the input may have caused)."""
    if returncode >= 0:
        return None
    try:
        sig = signal.Signals(-returncode)
    except ValueError:
        return None
    if sig not in ENVIRONMENT_SIGNALS:
        return None
    why = " (out of memory, or stopped by the system)" if sig == signal.SIGKILL else ""
    return f"killed by {sig.name}{why}"


def data_fault(exc: BaseException, path: str | Path | None) -> str:
    """The quarantine reason (``Type: message``) for a fault of the input at `path`.

    Raises EnvironmentFault instead when `exc` is a fault of the machine, so the caller's
    ``except`` quarantines data faults only.
    """
    cause = environment_cause(exc)
    if cause is not None:
        if isinstance(exc, EnvironmentFault):
            raise exc
        raise EnvironmentFault(cause, getattr(exc, "filename", None) or path,
                               f"{type(exc).__name__}: {exc}") from exc
    return f"{type(exc).__name__}: {exc}"
