"""Probing and decoding real clips made with the bundled ffmpeg."""

import numpy as np
import pytest

from ecem.clip_probe import probe_clip
from ecem.ffmpeg import FFmpegError, run_ffmpeg
from ecem.media import read_frames


def make_clip(path, frames=30, audio="sine=frequency=440", fps=25):
    args = ["-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={fps}:duration={frames / fps}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"{audio}:duration={frames / fps}"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-frames:v", str(frames)]
    args += ["-c:a", "aac"] if audio else []
    run_ffmpeg([*args, str(path)])
    return path


def test_probe_ok_clip(tmp_path):
    p = probe_clip(make_clip(tmp_path / "a.mp4", frames=30))
    assert (p.status, p.n_frames, p.width, p.height, p.has_audio) == ("ok", 30, 160, 120, True)
    assert p.fps == pytest.approx(25) and p.duration_s == pytest.approx(1.2)
    assert p.audio_peak_dbfs > -20


def test_probe_statuses_of_bad_clips(tmp_path):
    assert probe_clip(tmp_path / "nope.mp4").status == "missing"
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert probe_clip(tmp_path / "empty.mp4").status == "corrupt"
    good = make_clip(tmp_path / "g.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(good[: len(good) // 3])
    cut = probe_clip(tmp_path / "cut.mp4")
    assert cut.status == "corrupt" and cut.status_detail
    mute = probe_clip(make_clip(tmp_path / "mute.mp4", audio=None))
    assert (mute.status, mute.status_detail) == ("no_audio", "no audio stream")
    silent = probe_clip(make_clip(tmp_path / "silent.mp4", audio="anullsrc=r=16000:cl=mono"))
    assert silent.status == "no_audio" and "silent" in silent.status_detail
    assert silent.n_frames == 30  # the video stays usable


def test_probe_sees_a_cut_off_faststart_file(tmp_path):
    # The index at the front still lists every frame; the data of the second half is gone.
    run_ffmpeg(["-i", str(make_clip(tmp_path / "a.mp4", frames=60)), "-c", "copy",
                "-movflags", "+faststart", str(tmp_path / "fs.mp4")])
    data = (tmp_path / "fs.mp4").read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])
    cut = probe_clip(tmp_path / "half.mp4")
    assert cut.status == "corrupt" and cut.status_detail.startswith("truncated: ")
    assert "of the 60 frames" in cut.status_detail
    assert probe_clip(tmp_path / "fs.mp4").status == "ok"


def test_read_frames_returns_requested_order_and_size(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", frames=20)
    allf = read_frames(clip)
    assert allf.shape == (20, 120, 160, 3) and allf.dtype == np.uint8
    picked = read_frames(clip, [7, 2, 7])
    assert np.array_equal(picked[0], allf[7]) and np.array_equal(picked[1], allf[2])
    assert read_frames(clip, [0, 1], size=(32, 24), gray=True).shape == (2, 24, 32, 1)
    with pytest.raises(IndexError):
        read_frames(clip, [25])


def test_run_ffmpeg_reports_stderr(tmp_path):
    with pytest.raises(FFmpegError, match="ffmpeg failed"):
        run_ffmpeg(["-i", str(tmp_path / "missing.mp4"), str(tmp_path / "out.mp4")])


@pytest.mark.parametrize("threaded", [True, False])
def test_sparse_reads_skip_unwanted_nonref_frames_yet_return_identical_frames(tmp_path, threaded):
    import av

    from ecem.media import display_order

    # x264's default B-frames, as MELD's clips have: some frames are never referenced.
    clip = tmp_path / "b.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=24000/1001:duration=3",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(clip)])
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        full = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    with av.open(str(clip)) as container:
        container.streams.video[0].codec_context.skip_frame = "NONREF"
        n_ref = sum(1 for _ in container.decode(video=0))
    assert n_ref < len(full)  # the clip has frames to skip
    assert sorted(display_order(clip).values()) == list(range(len(full)))
    for idx in ([*range(0, len(full), 6)], [len(full) - 1], [1, 2, 3], [*range(len(full))]):
        assert np.array_equal(read_frames(clip, idx, threaded=threaded), full[idx])
