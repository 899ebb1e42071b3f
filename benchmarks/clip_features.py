"""Benchmark: CLIP spatio-temporal features on one 20-utterance dialogue (19 prefix samples).

Generates a MELD-format corpus with a single 20-utterance dialogue (demo generator: real eSpeak
speech, overlapping clips), runs the dataset stage on it (segments + rendered prefix clips),
builds the tiny random CLIP of config.yaml, then times, in one run:

  (a) this stage: `segments` sampling — each needed source frame decoded and encoded once;
  (b) naive per-prefix extraction: `rendered_clip` sampling — every prefix clip decoded and its
      T frames encoded, as Video-ChatGPT would on the rendered videos;
  (c) decode only: decoding exactly the source frames (a) needs, nothing else.

Prints a table with ratios against (c) and (a). Not a test. Usage:

    .venv/bin/python benchmarks/clip_features.py [--workdir DIR] [--utterances 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EMOTIONS = ["joy", "surprise", "anger", "sadness", "fear", "disgust"]
SPEAKERS = ["Monica", "Joey", "Ross", "Rachel", "Phoebe", "Chandler"]
LINES = [
    "Okay everybody, dinner is finally ready.", "I have been waiting for this all day.",
    "Did you remember to buy the bread?", "No, I completely forgot about it.",
    "Then we will have to eat without it.", "That is not a problem for me at all.",
    "Wait, who left the door open again?", "I think it was the cat this time.",
    "We do not even have a cat.", "Then who is sitting on the couch?",
    "That is just my old sweater.", "It looked exactly like a small cat.",
    "Can we please start eating now?", "Sure, pass me the salad please.",
    "Here you go, it is still fresh.", "This is the best salad I ever had.",
    "You say that every single week.", "Because it is true every single week.",
    "Fine, I will make it again tomorrow.", "Great, then I am coming back tomorrow.",
]


def script(n_utts: int) -> dict:
    utts, anns = [], []
    for u in range(n_utts):
        emotion = "neutral" if u == 0 else EMOTIONS[u % len(EMOTIONS)]
        spk = SPEAKERS[u % len(SPEAKERS)]
        text = LINES[u % len(LINES)]
        utts.append({"speaker": spk, "text": text, "emotion": emotion, **({"overlap": 4} if u else {})})
        if u:
            anns.append({"video": f"0_{u}.mp4", "speaker": spk, "emotion": emotion, "text": text,
                         "cause": f"{spk} reacts to what was said just before."})
    return {"dialogues": [{"split": "train", "dialogue_id": 0, "season": 1, "episode": 1,
                           "utterances": utts}], "annotations": anns}


def build_corpus(work: Path, n_utts: int, cfg: dict, threads: int) -> None:
    from ecem.corpus.build import build_demo_corpus
    from ecem.dataset.stage import run_gather, run_probe, run_render, run_resolve, run_split
    from ecem.meld import MeldLayout

    ecem = work / "results/ecem"
    if (ecem / "clips.parquet").exists():
        return
    meld_cfg = {"root": "resources/demo/MELD.Raw", "splits": {}}
    build_demo_corpus(MeldLayout.from_config(meld_cfg), "resources/demo/ecem.json",
                      "resources/demo/truth.json", cfg["demo"], threads=threads, script=script(n_utts))
    ds = cfg["dataset"]
    run_resolve(meld_cfg, "resources/demo/ecem.json", {"match": ds["match"], "drop_neutral": True},
                str(ecem / "resolved.parquet"), str(ecem / "quarantine.parquet"))
    run_split(str(ecem / "resolved.parquet"), ds["split"], str(ecem / "annotations.parquet"))
    run_probe(str(ecem / "resolved.parquet"), meld_cfg, ds["probe"], str(ecem / "utterances.parquet"),
              threads)
    run_render(str(ecem / "resolved.parquet"), str(ecem / "utterances.parquet"), 0, 1, ds["dedup"],
               ds["render"], str(ecem / "render/shard-0"), str(ecem / "render/shard-0.segments.parquet"),
               str(ecem / "render/shard-0.clips.parquet"), threads)
    run_gather([str(ecem / "render/shard-0.segments.parquet")], [str(ecem / "render/shard-0.clips.parquet")],
               str(ecem / "segments.parquet"), str(ecem / "clips.parquet"))


def decode_only(plans, decoder: str) -> tuple[float, int]:
    """Seconds to decode exactly the frames the stage needs to RGB arrays, nothing else (no
    stacking, no resize).

    The faster of the codec's own frame threading and one thread per clip, so the baseline is
    the quickest plain decode, not a handicapped one."""
    from ecem.features.frames import decode_frames
    from ecem.media import iter_frames

    needed: dict[str, set[int]] = {}
    for plan in plans:
        for src, k in plan.picks:
            needed.setdefault(src, set()).add(k)
    best, n = float("inf"), 0
    for threaded in (True, False):
        t0 = time.perf_counter()
        if decoder == "pyav":
            n = sum(1 for src, idx in needed.items() for _ in iter_frames(src, idx, threaded=threaded))
        else:
            n = sum(len(decode_frames(src, sorted(idx), decoder)) for src, idx in needed.items())
        best = min(best, time.perf_counter() - t0)
    return best, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", default=None, help="reuse/keep the generated corpus here")
    ap.add_argument("--utterances", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--num-frames", type=int, default=None, help="T (default: config.yaml's)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds; the best of each is kept")
    ap.add_argument("--size", default="1280x720",
                    help="frame size of the generated clips, WxH (default: MELD's 1280x720; the "
                         "demo corpus uses 320x240)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    width, height = (int(v) for v in args.size.lower().split("x"))
    cfg["demo"].update(width=width, height=height)
    clip_cfg = {k: v for k, v in cfg["features"]["clip"].items() if k != "tiny"}
    if args.num_frames:
        clip_cfg["num_frames"] = args.num_frames
    work = Path(args.workdir or tempfile.mkdtemp(prefix="clip-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)

    from ecem.artifacts import read_table
    from ecem.features.frames import plan_samples
    from ecem.features.video_stage import extract_shard
    from ecem.features.tiny_models import build_tiny_clip_from_config

    t0 = time.perf_counter()
    build_corpus(work, args.utterances, cfg, args.threads)
    corpus_s = time.perf_counter() - t0
    model = clip_cfg["model"]
    if not Path(model).is_dir():
        build_tiny_clip_from_config(model, clip_cfg["image_size"], cfg["features"]["clip"]["tiny"])
    clips, segments = read_table("results/ecem/clips.parquet"), read_table("results/ecem/segments.parquet")
    T = int(clip_cfg["num_frames"])
    plans, excluded = plan_samples(clips, segments, T, "segments")
    n_prefix_frames = int(clips.loc[clips["status"] == "ok", "n_frames"].sum())
    n_source_frames = int(segments["n_frames"].sum())

    # warm-up (imports, model load, first-call allocations), not timed
    extract_shard("results/ecem/clips.parquet", "results/ecem/segments.parquet", 0, 1,
                  {**clip_cfg, "sampling": "segments"}, str(work / "warm.parquet"), args.threads,
                  progress=False)
    # Best of `repeats` interleaved rounds: sub-second timings on a shared 2-core machine jitter
    # by ±15%, and the minimum is the least disturbed run of each.
    times: dict[str, float] = {}
    stats: dict[str, dict] = {}
    n_decoded = 0
    for _ in range(args.repeats):
        for label, sampling in (("a", "segments"), ("b", "rendered_clip")):
            t0 = time.perf_counter()
            run = extract_shard("results/ecem/clips.parquet", "results/ecem/segments.parquet", 0, 1,
                                {**clip_cfg, "sampling": sampling}, str(work / f"{sampling}.parquet"),
                                args.threads, progress=False)
            elapsed = time.perf_counter() - t0
            if elapsed < times.get(label, float("inf")):
                times[label], stats[label] = elapsed, run
        elapsed, n_decoded = decode_only(plans, clip_cfg["decoder"])
        times["c"] = min(times.get("c", float("inf")), elapsed)

    print(f"\nCLIP features benchmark — {len(plans)} samples of one {args.utterances}-utterance dialogue; "
          f"T={T}, model {model} (tiny, random weights), device {clip_cfg['device']}, "
          f"{args.threads} threads, decoder {clip_cfg['decoder']}, best of {args.repeats}")
    print(f"source frames (deduplicated segments): {n_source_frames}; frames in all prefix clips: "
          f"{n_prefix_frames}; corpus + dataset stage built in {corpus_s:.1f}s; excluded: {len(excluded)}")
    print()
    header = f"{'':4}{'run':58}{'seconds':>9}{'frames enc.':>12}{'vs (c)':>8}{'vs (a)':>8}"
    print(header)
    print("-" * len(header))
    rows = [("a", "this stage (segments: each source frame once)", stats["a"]["frames_encoded"]),
            ("b", "naive per-prefix (rendered_clip: decode every prefix)", stats["b"]["frames_encoded"]),
            ("c", f"decode only the {n_decoded} source frames (a) needs", 0)]
    for key, name, enc in rows:
        print(f"({key}) {name:58}{times[key]:9.2f}{enc:12d}{times[key] / times['c']:8.2f}"
              f"{times[key] / times['a']:8.2f}")
    print(f"\n(a)/(c) = {times['a'] / times['c']:.2f} (goal ≤ 1.5); (b)/(a) = {times['b'] / times['a']:.2f}")
    for key in ("a", "b"):
        sec = stats[key]["seconds"]
        print(f"({key}) inside: decode+resize (summed over workers) {sec['decode']:.2f}s, model "
              f"{sec['model']:.2f}s ({1000 * sec['model'] / max(1, stats[key]['frames_encoded']):.2f} "
              f"ms/frame), extraction wall {sec['extract_wall']:.2f}s of {times[key]:.2f}s")


if __name__ == "__main__":
    main()
