"""Benchmark: what MELD's 1280×720 costs the decode-bound stages, per clip-second, vs a small size.

Makes one ~10 s H.264 clip per size with the same content (the astronaut photograph moving over
ffmpeg's testsrc2, 24000/1001 fps, libx264 `-preset veryfast -crf 20` + AAC, like MELD), then
measures CPU seconds (getrusage: this process, and RUSAGE_CHILDREN for ffmpeg) per clip-second:

  faces   decode: `read_frames` (threaded, the stage's default) of the frames the faces stage samples (features.faces.sample_fps),
          as `FacePipeline.process_segment` does; model: the project's MTCNN detector
          (features.faces defaults) on those frames;
  render  decode: ffmpeg decoding the source to null; encode: `encode_segment` (dataset.render
          defaults, 3 overlap frames trimmed) minus that decode;
  prefix  decode of a 3-segment prefix clip, stream-copied mp4 vs ffconcat playlist.

BEFORE/AFTER: the adopted change (``ecem.media.iter_frames`` no longer decodes the non-reference
frames nobody asked for) against decoding every frame. Then decode-side alternatives, each checked
for identical results: single-threaded decode, `skip_frame=NONREF` for all frames, seeking to a keyframe
(counts the clip's keyframes), scaling the sampled frames before detection, and input seeking
(`-ss`) instead of `trim` in the segment encode. Not a test. Usage:

    .venv/bin/python benchmarks/decode_720p.py [--seconds 10] [--sizes 1280x720,160x120]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
RATE = "24000/1001"
FPS = 24000 / 1001


def cpu(fn: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """Run `fn`; return (result, own CPU-s, children's CPU-s, wall-s)."""
    s0, c0, w0 = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN),
                  time.perf_counter())
    out = fn()
    s1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (s1.ru_utime + s1.ru_stime) - (s0.ru_utime + s0.ru_stime)
    kids = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    return out, own, kids, time.perf_counter() - w0


def make_clip(path: Path, size: tuple[int, int], seconds: float, sprite: Path) -> Path:
    """The same scene at any size: the photo, 60% of the frame high, sliding left to right."""
    from ecem.ffmpeg import run_ffmpeg

    w, h = size
    fh = int(h * 0.6) // 2 * 2
    scene = (f"[1:v]scale=-2:{fh}[s];[0:v][s]overlay=x='(W-w)*t/{seconds}':y='(H-h)/2'"
             f":shortest=1,format=yuv420p[v]")
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={RATE}:duration={seconds}",
                "-loop", "1", "-framerate", RATE, "-i", str(sprite),
                "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                "-filter_complex", scene, "-map", "[v]", "-map", "2:a",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "aac", "-shortest",
                str(path)])
    return path


def decode_nonref(path: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    """Decode with non-reference frames skipped; frames are indexed by their timestamps."""
    import av

    out = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        step = 1 / (FPS * stream.time_base)
        for frame in container.decode(stream):
            i = int(round(frame.pts / step))
            if i in wanted:
                out[i] = frame.to_ndarray(format="rgb24")
    return out


def decode_every_frame(path: Path, wanted: list[int], threaded: bool) -> list[np.ndarray]:
    """The faces stage's decode before this change: every frame decoded, the wanted converted."""
    import av

    keep, last, out = set(wanted), max(wanted), []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO" if threaded else "NONE"
        for i, frame in enumerate(container.decode(stream)):
            if i in keep:
                out.append(frame.to_ndarray(format="rgb24"))
            if i >= last:
                break
    return out


def keyframes(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(p.is_keyframe for p in container.demux(video=0) if p.size)


def encode_ss(src: str, dst: Path, first_frame: int, size: tuple[int, int], render: dict[str, Any]) -> None:
    """`encode_segment` with input seeking (`-ss` before `-i`) in place of the trim filters."""
    from ecem.ffmpeg import run_ffmpeg

    start = first_frame / FPS
    run_ffmpeg(["-ss", f"{start:.6f}", "-i", src, "-map", "0:v:0", "-map", "0:a:0",
                "-vf", f"setpts=PTS-STARTPTS,scale={size[0]}:{size[1]},setsar=1",
                "-af", "asetpts=PTS-STARTPTS", "-fps_mode", "passthrough",
                "-c:v", "libx264", "-preset", render["preset"], "-crf", str(render["crf"]),
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-ar", str(render["audio_rate"]),
                "-ac", "1", str(dst)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sizes", default="1280x720,160x120")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    import skimage.data
    import skimage.io
    import torch

    from ecem.clip_probe import probe_clip
    from ecem.dataset.render import concat_segments, encode_segment, plan_segment
    from ecem.faces.detect import build_detector
    from ecem.faces.stage import sample_indices
    from ecem.ffmpeg import run_ffmpeg
    from ecem.media import read_frames
    from ecem.playlist import write_playlist

    torch.set_num_threads(1)  # CPU-s of the model comparable between sizes, one core
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    fcfg, render = config["features"]["faces"], config["dataset"]["render"]
    detector = build_detector(fcfg["detector"], torch.device("cpu"))
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows: list[tuple[str, str, str, str, str]] = []
    per: dict[tuple[int, int], dict[str, float]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sprite = work / "astronaut.png"
        skimage.io.imsave(sprite, skimage.data.astronaut()[:300, 120:420])
        for size in sizes:
            tag = f"{size[0]}x{size[1]}"
            clip = make_clip(work / f"{tag}.mp4", size, args.seconds, sprite)
            n = probe_clip(clip).n_frames
            secs = n / FPS
            m: dict[str, float] = {}
            idx = sample_indices(0, n - 1, FPS, float(fcfg["sample_fps"]))
            before, m["faces_dec_before"], _, _ = cpu(lambda: decode_every_frame(clip, idx, True))
            frames, m["faces_dec"], _, _ = cpu(lambda: read_frames(clip, idx))
            m["skip_same"] = bool(np.array_equal(np.stack(before), frames))
            single, m["faces_dec_1t"], _, _ = cpu(lambda: read_frames(clip, idx, threaded=False))
            bs = int(fcfg["batch_size"])
            dets, m["faces_det"], _, _ = cpu(lambda: [d for i in range(0, len(frames), bs)
                                                       for d in detector.detect(frames[i:i + bs])])
            m["faces_found"] = sum(len(d) for d in dets) / len(frames)
            # Alternatives on the faces side.
            nonref, m["nonref_dec"], _, _ = cpu(lambda: decode_nonref(clip, idx))
            m["nonref_missing"] = len(set(idx) - set(nonref))
            m["nonref_same"] = all(np.array_equal(nonref[i], frames[idx.index(i)]) for i in nonref)
            m["keyframes"] = keyframes(clip)
            small = (size[0] // 4 // 2 * 2, size[1] // 4 // 2 * 2)
            m["reduced_dec"] = m["reduced_det"] = m["reduced_found"] = float("nan")
            if small[1] >= 120:  # below that MTCNN's pyramid (40 px faces) has no level
                reduced, m["reduced_dec"], _, _ = cpu(lambda: read_frames(clip, idx, size=small))
                rdets, m["reduced_det"], _, _ = cpu(lambda: [d for i in range(0, len(reduced), bs)
                                                             for d in detector.detect(reduced[i:i + bs])])
                m["reduced_found"] = sum(len(d) for d in rdets) / len(reduced)
            m["threads_same"] = bool(np.array_equal(single, frames))
            # Render: decode vs encode of one segment, 3 overlap frames trimmed.
            _, _, m["render_dec"], _ = cpu(lambda: run_ffmpeg(["-i", str(clip), "-map", "0:v:0", "-f", "null", "-"]))
            seg = work / f"{tag}.seg.mp4"
            row = {"video_path": str(clip), "width": size[0], "height": size[1], "fps": FPS, "n_frames": n,
                   "rotation": 0, "variable_rate": False}
            plan = plan_segment(row, 3, FPS, size)
            _, _, enc, _ = cpu(lambda: encode_segment(str(clip), seg, plan, True, render))
            m["render_enc"] = enc - m["render_dec"]
            seg_ss = work / f"{tag}.ss.mp4"
            _, _, m["render_ss"], _ = cpu(lambda: encode_ss(str(clip), seg_ss, 3, size, render))
            m["ss_frames"], m["seg_frames"] = probe_clip(seg_ss).n_frames, probe_clip(seg).n_frames
            m["ss_same"] = (m["ss_frames"] == m["seg_frames"]
                            and np.array_equal(read_frames(seg_ss, [0, m["seg_frames"] - 1]),
                                               read_frames(seg, [0, m["seg_frames"] - 1])))
            m["render_total"] = enc
            # Prefix clip of three segments: stream-copied mp4 vs playlist.
            (work / "clips").mkdir(exist_ok=True)
            mp4, pl = work / "clips" / f"{tag}.mp4", work / "clips" / f"{tag}.ffconcat"
            concat_segments([seg] * 3, mp4)
            write_playlist([seg] * 3, pl)
            a, m["prefix_mp4"], _, _ = cpu(lambda: read_frames(mp4, threaded=False))
            b, m["prefix_pl"], _, _ = cpu(lambda: read_frames(pl, threaded=False))
            m["prefix_same"] = bool(np.array_equal(a, b))
            m["prefix_bytes"] = (mp4.stat().st_size, pl.stat().st_size)
            for k in [k for k in m if k.startswith(("faces_d", "nonref_dec", "reduced_d", "render_", "prefix_m",
                                                    "prefix_p"))]:
                m[k] /= secs
            m["prefix_mp4"] /= 3  # three segments long
            m["prefix_pl"] /= 3
            per[size] = m
        big, ref = sizes[0], sizes[-1]

        def ratio(key: str) -> str:
            return f"{per[big][key] / per[ref][key]:.1f}×" if per[ref][key] > 0 else "—"

        def add(stage: str, what: str, key: str, key2: str | None = None) -> None:
            for size in sizes:
                v = per[size]
                rows.append((stage, f"{size[0]}x{size[1]}", what, f"{v[key]:.3f}",
                             f"{v[key2]:.3f}" if key2 else "—"))
            rows.append((stage, f"{big[0]}/{ref[0]}", what, ratio(key), ratio(key2) if key2 else "—"))

        add("faces", "BEFORE: decode every frame (threaded) | MTCNN", "faces_dec_before", "faces_det")
        add("faces", "AFTER: read_frames skips unwanted non-ref | —", "faces_dec")
        add("faces", "AFTER, single-threaded | —", "faces_dec_1t")
        for size in sizes:  # not a size ratio: 1/4 of each size against that size in full
            v = per[size]
            if v["reduced_dec"] == v["reduced_dec"]:
                rows.append(("faces", f"{size[0]}x{size[1]} → 1/4", "decode + scale | MTCNN on the 1/4 frames",
                             f"{v['reduced_dec']:.3f} ({v['reduced_dec'] / v['faces_dec']:.2f}× full)",
                             f"{v['reduced_det']:.3f} ({v['reduced_det'] / v['faces_det']:.2f}× full)"))
        add("faces", "skip_frame=NONREF on every frame | —", "nonref_dec")
        add("render", "ffmpeg decode | encode_segment − decode", "render_dec", "render_enc")
        add("render", "— | -ss input seek (whole ffmpeg)", "render_total", "render_ss")
        add("prefix", "decode mp4 | decode playlist", "prefix_mp4", "prefix_pl")
        for size in sizes:
            v = per[size]
            tag = f"{size[0]}x{size[1]}"
            notes.append(
                f"{tag}: AFTER/BEFORE faces decode {v['faces_dec'] / v['faces_dec_before']:.2f}×, identical frames: "
                f"{v['skip_same']}; faces/frame {v['faces_found']:.2f} full vs {v['reduced_found']:.2f} at 1/4 (not identical); "
                f"threaded == single-threaded frames: {v['threads_same']}; NONREF: {int(v['nonref_missing'])} of the "
                f"sampled frames never decoded (unsafe), the rest identical: {v['nonref_same']}; keyframes in clip: "
                f"{int(v['keyframes'])} (seeking cannot skip decoding); -ss: {int(v['ss_frames'])} vs "
                f"{int(v['seg_frames'])} frames, identical: {v['ss_same']}; prefix mp4 {v['prefix_bytes'][0]} B vs "
                f"playlist {v['prefix_bytes'][1]} B, identical frames: {v['prefix_same']}")
    head = ("stage", "size", "measured (a | b)", "a CPU-s/clip-s", "b CPU-s/clip-s")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    print()
    for line in notes:
        print(line)


if __name__ == "__main__":
    main()
