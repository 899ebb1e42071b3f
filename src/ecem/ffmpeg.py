"""The ffmpeg binary, run without a shell: writing clips, segments and playlists.

ffmpeg comes from the `imageio-ffmpeg` wheel (no system install needed). Paths reach it through
:func:`ffmpeg_url`, never through a shell, so no character of a folder name — a quote, ``$()``,
a backtick, ``:``, ``?``, ``#`` — is read as a protocol, a query or anything but the name. A
failure is an :class:`FFmpegError` (a fault of the input) or, when the machine is at fault (full
disk, I/O error, killed, no executable), an :class:`ecem.faults.EnvironmentFault`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from ecem.faults import EnvironmentFault, environment_message, signal_cause


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg (or named by IMAGEIO_FFMPEG_EXE)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_url(path: str | Path) -> str:
    """`path` as FFmpeg should open it. FFmpeg reads a name whose first part holds a colon as a
    protocol (``a:b/c.mp4`` names protocol ``a``); such a path becomes a ``file:`` URL, which
    FFmpeg's file protocol takes literally. Other paths stay as they are (and read so in
    FFmpeg's messages)."""
    text = os.fspath(path)
    return "file:" + text if ":" in text.split("/", 1)[0] else text


class FFmpegError(RuntimeError):
    """ffmpeg exited non-zero for a reason of its input; the message carries its stderr tail."""


def _ffmpeg_failure(returncode: int, stderr: bytes, output: str) -> Exception:
    """EnvironmentFault when the machine stopped ffmpeg, else FFmpegError (the input's fault)."""
    lines = stderr.decode(errors="replace").strip().splitlines()
    tail = " | ".join(lines[-5:])
    killed = signal_cause(returncode)
    if killed:
        return EnvironmentFault(f"ffmpeg {killed}", output, tail)
    cause = environment_message("\n".join(lines))
    if cause:  # ffmpeg's first line naming it says what it was doing
        return EnvironmentFault(cause, output, "ffmpeg: " + next(ln for ln in lines if cause in ln))
    return FFmpegError(f"ffmpeg failed ({returncode}): {tail}")


def run_ffmpeg(args: Sequence[str], input_bytes: bytes | None = None,
               frames: Iterable[bytes] | None = None, output: str | Path | None = None) -> None:
    """Run ffmpeg quietly with `args`, feeding its stdin `input_bytes` or the chunks of `frames`
    (raw video, streamed: memory holds one frame).

    `output` names the file ffmpeg writes (default: the last argument) for the message of an
    :class:`EnvironmentFault`, raised when the machine is at fault (no space, I/O error, killed
    by the system, no ffmpeg executable); any other failure raises FFmpegError.
    """
    fed = input_bytes is not None or frames is not None
    cmd = [ffmpeg_exe(), "-hide_banner", *([] if fed else ["-nostdin"]), "-loglevel", "error", "-y", *args]
    output = str(output if output is not None else args[-1]).removeprefix("file:")
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: ffmpeg never blocks on stderr
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if fed else subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)
        except OSError as exc:
            raise EnvironmentFault(f"ffmpeg cannot be run ({exc.strerror})", cmd[0]) from None
        try:
            if fed:
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):  # ffmpeg stopped reading: its exit
                    try:                                    # status says why
                        for chunk in ([input_bytes] if input_bytes is not None else frames or ()):
                            proc.stdin.write(chunk)
                    finally:
                        proc.stdin.close()
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if returncode != 0:
            err.seek(0)
            raise _ffmpeg_failure(returncode, err.read(), output)
