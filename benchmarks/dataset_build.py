"""Benchmark: prefix-clip assembly of the dataset stage vs naive per-prefix re-encoding.

Generates a MELD-format dialogue of N utterances (default 20; one sample per utterance after the
first), then times, in one run on the same clips:
  (a) this stage: probe once, encode each deduplicated segment once, stream-copy concat per prefix;
  (b) naive: for every prefix, decode and re-encode all of its clips with ffmpeg's concat filter;
  (c) one plain decode of every source frame (PyAV), the floor any approach pays.
Prints a table with ratios against (c) and the speed-up of (a) over (b).

Usage: .venv/bin/python benchmarks/dataset_build.py [--utterances 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import av
import yaml

from ecem.artifacts import read_table
from ecem.corpus.build import build_demo_corpus
from ecem.dataset.stage import run_probe, run_render, run_resolve
from ecem.ffmpeg import run_ffmpeg
from ecem.meld import MeldLayout

REPO = Path(__file__).resolve().parents[1]

EMOTIONS = ["joy", "surprise", "anger", "sadness", "fear", "disgust"]


def make_script(n: int) -> dict:
    speakers = ["Ross", "Rachel", "Monica", "Chandler", "Joey", "Phoebe"]
    utterances = [{"speaker": speakers[i % 6], "text": f"This is line number {i + 1} of the long scene.",
                   "emotion": EMOTIONS[i % 6] if i else "neutral", "overlap": 3 + i % 5 if i else 0}
                  for i in range(n)]
    annotations = [{"video": f"0_{i}.mp4", "speaker": u["speaker"], "emotion": u["emotion"],
                    "text": u["text"], "cause": "Benchmark cause."}
                   for i, u in enumerate(utterances) if i]
    return {"dialogues": [{"split": "train", "dialogue_id": 0, "season": 1, "episode": 1,
                           "utterances": utterances}], "annotations": annotations}


def naive_prefix(clips: list[tuple[str, int]], dst: Path) -> None:
    """Re-encode one prefix from its source clips (trimmed by the same overlaps)."""
    args, chains = [], []
    for i, (path, skip) in enumerate(clips):
        args += ["-i", path]
        chains.append(f"[{i}:v]trim=start_frame={skip},setpts=PTS-STARTPTS[v{i}];"
                      f"[{i}:a]atrim=start={skip / 23.976:.6f},asetpts=PTS-STARTPTS[a{i}]")
    joined = "".join(f"[v{i}][a{i}]" for i in range(len(clips)))
    graph = ";".join(chains) + f";{joined}concat=n={len(clips)}:v=1:a=1[v][a]"
    run_ffmpeg([*args, "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264",
                "-preset", "veryfast", "-crf", "18", "-c:a", "aac", str(dst)])


def decode_all(paths: list[str]) -> int:
    frames = 0
    for path in paths:
        with av.open(path) as container:
            for _ in container.decode(video=0):
                frames += 1
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    ds = config["dataset"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        layout = MeldLayout.default(tmp / "MELD.Raw")
        meld_cfg = {"root": str(layout.root)}
        build_demo_corpus(layout, tmp / "ann.json", tmp / "truth.json", config["demo"], threads=2,
                          script=make_script(args.utterances))
        run_resolve(meld_cfg, str(tmp / "ann.json"), ds, str(tmp / "res.parquet"), str(tmp / "q.parquet"))

        t0 = time.perf_counter()
        run_probe(str(tmp / "res.parquet"), meld_cfg, ds["probe"], str(tmp / "utt.parquet"), args.threads)
        run_render(str(tmp / "res.parquet"), str(tmp / "utt.parquet"), 0, 1, ds["dedup"], ds["render"],
                   str(tmp / "render"), str(tmp / "seg.parquet"), str(tmp / "clips.parquet"), args.threads)
        stage_s = time.perf_counter() - t0

        segs = read_table(tmp / "seg.parquet").sort_values("utterance_id")
        sources = [(r.video_path, int(r.overlap_frames)) for r in segs.itertuples()]
        t0 = time.perf_counter()
        for n in range(2, len(sources) + 1):
            naive_prefix(sources[:n], tmp / f"naive_{n}.mp4")
        naive_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        n_frames = decode_all([p for p, _ in sources])
        decode_s = time.perf_counter() - t0

    n_samples = args.utterances - 1
    print(f"dialogue of {args.utterances} utterances, {n_samples} prefix samples, "
          f"{n_frames} source frames (CPU, {args.threads} thread(s))")
    print(f"{'approach':<54}{'seconds':>9}{'x decode':>10}")
    for name, secs in (("(a) this stage: segments once + stream-copy concat", stage_s),
                       ("(b) naive per-prefix re-encoding", naive_s),
                       ("(c) one plain decode of all source frames", decode_s)):
        print(f"{name:<54}{secs:>9.2f}{secs / decode_s:>10.1f}")
    print(f"speed-up of (a) over (b): {naive_s / stage_s:.1f}x")


if __name__ == "__main__":
    main()
