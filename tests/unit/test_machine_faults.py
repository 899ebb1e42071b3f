"""Faults of the machine fail the job with one line; faults of the data are named.

Full disks are real: a path linked to /dev/full, where every write fails with ENOSPC from the
kernel. A killed ffmpeg is a real process killed by SIGKILL, a missing ffmpeg a path that does
not exist.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import textwrap
import types

import av
import pandas as pd
import pytest

from ecem.artifacts import atomic_path, write_json, write_table
from ecem.faults import EnvironmentFault, data_fault, signal_cause
from ecem.ffmpeg import ffmpeg_exe, run_ffmpeg
from ecem.logs import rule_logging

FULL = "/dev/full"
pytestmark = pytest.mark.skipif(not os.path.exists(FULL), reason="needs /dev/full")

TINY = ["-f", "lavfi", "-i", "testsrc2=size=32x24:rate=8:duration=0.5", "-c:v", "libx264",
        "-pix_fmt", "yuv420p"]


def test_data_faults_are_named_and_machine_faults_raise():
    assert data_fault(FileNotFoundError(errno.ENOENT, "No such file", "a.mp4"), "a.mp4").startswith(
        "FileNotFoundError")
    bad = av.error.InvalidDataError(errno.EINVAL, "Invalid data found when processing input")
    assert data_fault(bad, "a.mp4").startswith("InvalidDataError")
    for exc, cause in [(OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
                       (OSError(errno.EIO, "Input/output error", "/mnt/x.mp4"), "Input/output error"),
                       (PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
                       (MemoryError(), "out of memory"),
                       # Arrow puts the errno in its message only
                       (OSError("Error writing bytes to file. Detail: [errno 28] No space left on device"),
                        "No space left on device")]:
        with pytest.raises(EnvironmentFault) as info:
            data_fault(exc, "/data/a.mp4")
        assert info.value.cause == cause and "\n" not in str(info.value)
    with pytest.raises(EnvironmentFault, match="Input/output error: /mnt/x.mp4"):
        data_fault(OSError(errno.EIO, "Input/output error", "/mnt/x.mp4"), "y")


def test_signals_of_the_system_are_machine_faults_and_crashes_are_not():
    assert signal_cause(-9).startswith("killed by SIGKILL (out of memory")
    assert signal_cause(-15) == "killed by SIGTERM"
    assert signal_cause(-11) is None and signal_cause(1) is None and signal_cause(0) is None


def test_ffmpeg_writing_to_a_full_disk_raises_an_environment_fault(tmp_path):
    out = tmp_path / "seg.mp4"
    out.symlink_to(FULL)
    with pytest.raises(EnvironmentFault) as info:
        run_ffmpeg([*TINY, str(out)])
    assert info.value.cause == "No space left on device" and info.value.path == str(out)


@pytest.fixture
def ffmpeg_named(monkeypatch):
    """Point imageio-ffmpeg at another executable (IMAGEIO_FFMPEG_EXE) for one test."""
    def use(path):
        monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(path))
        ffmpeg_exe.cache_clear()
    yield use
    ffmpeg_exe.cache_clear()


def test_a_missing_or_killed_ffmpeg_is_a_machine_fault(tmp_path, ffmpeg_named):
    ffmpeg_named(tmp_path / "no-such-ffmpeg")
    with pytest.raises(EnvironmentFault, match="ffmpeg cannot be run .*no-such-ffmpeg"):
        run_ffmpeg([*TINY, str(tmp_path / "a.mp4")])
    killed = tmp_path / "killed-ffmpeg"
    killed.write_text("#!/bin/sh\nkill -KILL $$\n")
    killed.chmod(0o755)
    ffmpeg_named(killed)
    with pytest.raises(EnvironmentFault, match="ffmpeg killed by SIGKILL .*a.mp4"):
        run_ffmpeg([*TINY, str(tmp_path / "a.mp4")])


def test_a_write_that_fills_the_disk_names_the_artifact_and_leaves_nothing(tmp_path):
    target = tmp_path / "table.parquet"
    with pytest.raises(EnvironmentFault) as info:
        with atomic_path(target) as tmp:  # the temporary file sits on a full disk
            tmp.unlink()
            tmp.symlink_to(FULL)
            pd.DataFrame({"a": range(1000)}).to_parquet(tmp)
    assert info.value.cause == "No space left on device" and info.value.path == str(target)
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_file_of_a_killed_writer_goes_with_the_next_write(tmp_path):
    target = tmp_path / "shard-0.parquet"
    script = textwrap.dedent(f"""
        import os, signal
        from ecem.artifacts import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"PAR1")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script],
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == -9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".shard-0.parquet.") and left[0].endswith(".part.parquet")
    write_table(pd.DataFrame({"a": [1]}), target, "test")
    assert [p.name for p in tmp_path.iterdir()] == ["shard-0.parquet"]


@pytest.fixture
def rule(tmp_path):
    """What a rule script gets from Snakemake, as far as rule_logging reads it; the root logger's
    handlers (which rule_logging replaces) are put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield types.SimpleNamespace(log=[str(tmp_path / "rule.log")], rule="render_clips")
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_rule_that_meets_a_machine_fault_exits_with_one_line_and_no_traceback(tmp_path, rule, capsys):
    with pytest.raises(SystemExit) as info:
        with rule_logging(rule):
            write_json({"a": 1}, tmp_path / "out" / "q.json")
            os.symlink(FULL, tmp_path / "out" / "full.json")
            with open(tmp_path / "out" / "full.json", "w") as fh:  # a bare OSError, no path in it
                fh.write("x" * 100_000)
    assert info.value.code == 1
    log = (tmp_path / "rule.log").read_text()
    assert "Traceback" not in log and "Traceback" not in capsys.readouterr().err
    lines = [ln for ln in log.splitlines() if "ERROR" in ln]
    assert len(lines) == 1 and "fault of the machine" in lines[0] and "No space left on device" in lines[0]


def test_other_errors_in_a_rule_keep_their_traceback(tmp_path, rule):
    with pytest.raises(ValueError):
        with rule_logging(rule):
            raise ValueError("a bad config value")
    assert "Traceback" in (tmp_path / "rule.log").read_text()


def test_an_io_error_reading_a_clip_fails_transcription_and_audio_features(tmp_path):
    """A read that fails with EIO (the kernel's, from /proc/self/mem) raises instead of giving the
    utterance `failed` or the segment `corrupt`."""
    from ecem.features.audio_stage import read_segment
    from ecem.transcribe.stage import transcribe_utterances

    eio = tmp_path / "eio.mp4"
    eio.symlink_to("/proc/self/mem")
    utterance = pd.DataFrame([{"meld_split": "train", "dialogue_id": 0, "utterance_id": 0, "text": "hi",
                               "video_path": str(eio), "status": "ok", "status_detail": "",
                               "duration_s": 1.0}])
    with pytest.raises(EnvironmentFault, match="Input/output error"):
        transcribe_utterances(utterance, {})
    with pytest.raises(EnvironmentFault, match="Input/output error"):
        read_segment({"status": "ok", "segment_path": str(eio)})
    missing = read_segment({"status": "ok", "segment_path": str(tmp_path / "gone.mp4")})
    assert missing.error.startswith("missing")  # a fault of the data stays a reason
