"""Benchmark: the facial emotion stage on one 20-utterance dialogue.

Generates a MELD-format corpus with a single 20-utterance dialogue (the demo generator: real face
photograph moving over real backgrounds, overlapping clips); each utterance's kept frame range is
taken from the generator's truth record (the frames after its planted overlap, as the dataset
stage's segments hold them). Then, in one run:

  (a) this stage: every utterance segment decoded, detected, classified and tracked once
      (`FacePipeline.process_segment`), prefix samples composed from the segments;
  (b) naive per-prefix processing: for each of the 20 prefix samples, all its segments are
      processed again (decode + detect + classify + track), as a per-sample pipeline would;
  (c) detector throughput, frames/s: MTCNN (bundled weights, the baseline) and RetinaFace
      ResNet-50 (random weights: same cost as real ones) on the same frames;
  (d) expression throughput, faces/s: FER2013 CNN (the baseline) and DDAMFN (random weights,
      authors' layout), batched, on the faces MTCNN found, crops included.

Prints a table with ratios against the baseline of each block. Not a test. Usage:

    .venv/bin/python benchmarks/faces.py [--utterances 20] [--sample-fps 1] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
EMOTIONS = ["joy", "surprise", "anger", "sadness", "fear", "disgust", "neutral"]
SPEAKERS = ["Monica", "Joey", "Ross", "Rachel", "Phoebe", "Chandler"]
LINES = ["Okay everybody, dinner is ready.", "I have been waiting all day.", "Did you buy the bread?",
         "No, I forgot about it.", "Then we eat without it.", "That is fine with me.",
         "Who left the door open?", "I think it was the cat.", "We do not have a cat.",
         "Then who is on the couch?", "That is my old sweater.", "It looked like a cat.",
         "Can we start eating now?", "Sure, pass the salad.", "Here you go, it is fresh.",
         "This is the best salad.", "Monica made it herself.", "I knew it tasted great.",
         "Who wants some dessert?", "I will take two pieces."]


def build_corpus(workdir: Path, n_utt: int, threads: int) -> tuple[list[dict], float]:
    from ecem.corpus.build import build_demo_corpus
    from ecem.meld import MeldLayout

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    script = {"dialogues": [{"split": "train", "dialogue_id": 0, "season": 1, "episode": 1, "utterances": [
        {"speaker": SPEAKERS[i % len(SPEAKERS)], "text": LINES[i % len(LINES)],
         "emotion": EMOTIONS[i % len(EMOTIONS)], **({"overlap": 3 + i % 4} if i else {})}
        for i in range(n_utt)]}], "annotations": []}
    layout = MeldLayout.from_config({**config["meld"], "root": str(workdir / "MELD.Raw")})
    truth = build_demo_corpus(layout, workdir / "ecem.json", workdir / "truth.json", config["demo"], threads,
                              script=script)
    segments = [{"video_path": str(layout.video_path("train", 0, c["utterance_id"])), "utterance_id":
                 c["utterance_id"], "first_frame": c["overlap_with_previous"], "last_frame": c["n_frames"] - 1}
                for c in truth["clips"]]
    return segments, float(truth["fps"])


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utterances", type=int, default=20)
    ap.add_argument("--sample-fps", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(REPO / "src"))
    from ecem.faces import ddamfn
    from ecem.devices import resolve_device
    from ecem.faces.detect import build_detector
    from ecem.faces.expression import build_expression_model
    from ecem.faces.stage import FacePipeline
    from ecem.media import read_frames

    cfg = copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text())["features"]["faces"])
    cfg["sample_fps"], cfg["device"] = args.sample_fps, args.device
    device = torch.device(resolve_device(args.device))
    tmp = tempfile.TemporaryDirectory(prefix="faces-bench-")
    workdir = args.workdir or Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    t_corpus, (segments, fps) = timed(build_corpus, workdir, args.utterances, args.threads)
    print(f"corpus: {len(segments)} utterance clips in {t_corpus:.1f} s ({workdir})")

    pipe = FacePipeline(cfg, device)

    def run_segment(seg):
        keys = {"meld_split": "train", "dialogue_id": 0, "utterance_id": seg["utterance_id"]}
        return pipe.process_segment(seg["video_path"], range(seg["first_frame"], seg["last_frame"] + 1), fps,
                                    seg["first_frame"] / fps, keys)

    pipe.process_segment(segments[0]["video_path"], range(4), fps, 0.0, {})  # warm-up
    pipe.timing.update(decode_s=0.0, detect_s=0.0, expression_s=0.0, frames=0, faces=0)
    t_linear, per_seg = timed(lambda: [run_segment(s) for s in segments])
    frames_linear = pipe.timing["frames"]
    timing = dict(pipe.timing)
    print(f"(a) per-utterance: {t_linear:.1f} s for {frames_linear} frames; running (b)…", flush=True)
    t_naive, _ = timed(lambda: [run_segment(s) for k in range(len(segments)) for s in segments[:k + 1]])
    frames_naive = pipe.timing["frames"] - frames_linear

    # (c) detectors on the same frames
    frames = np.concatenate([read_frames(s["video_path"], list(range(s["first_frame"], s["last_frame"] + 1, 12)))
                             for s in segments])
    bs = cfg["batch_size"]
    rows_det = []
    t_mt, dets = timed(lambda: [d for i in range(0, len(frames), bs) for d in pipe.detector.detect(frames[i:i + bs])])
    rows_det.append(("MTCNN (bundled weights)", len(frames) / t_mt))
    from retinaface.network import RetinaFace

    rf_path = workdir / "retinaface_random.pth"
    torch.save(RetinaFace(name="Resnet50", pretrained=False, in_channels=256, out_channels=256,
                          return_layers={"layer2": 1, "layer3": 2, "layer4": 3}).state_dict(), rf_path)
    for max_size in (320, 640):
        rcfg = {**cfg["detector"], "name": "retinaface", "retinaface": {**cfg["detector"]["retinaface"],
                                                                         "weights": str(rf_path), "max_size": max_size}}
        rf = build_detector(rcfg, device)
        sub = frames[: 2 * bs]
        t_rf, _ = timed(lambda: [rf.detect(sub[i:i + bs]) for i in range(0, len(sub), bs)])
        rows_det.append((f"RetinaFace R50 @{max_size} (random weights)", len(sub) / t_rf))

    # (d) expression models on the faces MTCNN found
    fer = pipe.expression
    d_path = workdir / "ddamfn_random.pth"
    ddamfn.save_ddamfn(ddamfn.DDAMFN(7, 2), d_path)
    ecfg = {**cfg["expression"], "name": "ddamfn", "ddamfn": {**cfg["expression"]["ddamfn"], "weights": str(d_path)}}
    dd = build_expression_model(ecfg, device)
    rows_expr = []
    for name, model in (("FER2013 CNN (bundled weights)", fer), ("DDAMFN (random weights)", dd)):
        def run(model=model):
            crops = np.concatenate([model.crops(f, d) for f, d in zip(frames, dets) if len(d)])
            for i in range(0, len(crops), bs):
                model.classify(crops[i:i + bs])
            return len(crops)
        t_e, n_faces = timed(run)
        rows_expr.append((name, n_faces / t_e))

    dev = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {args.threads} torch threads"
    print(f"\nfacial emotion stage — {args.utterances}-utterance dialogue, {args.sample_fps} frames/s sampled, "
          f"{dev}")
    print(f"{'measure':<48} {'value':>12} {'ratio':>8}")
    print(f"{'(a) per-utterance: seconds':<48} {t_linear:>12.2f} {'1.00':>8}")
    print(f"{'(b) naive per-prefix: seconds':<48} {t_naive:>12.2f} {t_naive / t_linear:>8.2f}")
    print(f"{'    frames processed (a) / (b)':<48} {frames_linear:>5d} / {frames_naive:<5d} "
          f"{frames_naive / max(frames_linear, 1):>8.2f}")
    print(f"{'(a) split: decode / detect / expression, s':<48} {timing['decode_s']:.2f} / {timing['detect_s']:.2f} / "
          f"{timing['expression_s']:.2f}")
    base = rows_det[0][1]
    for name, v in rows_det:
        print(f"{'(c) ' + name + ', frames/s':<48} {v:>12.1f} {v / base:>8.2f}")
    base = rows_expr[0][1]
    for name, v in rows_expr:
        print(f"{'(d) ' + name + ', faces/s':<48} {v:>12.1f} {v / base:>8.2f}")
    print(f"\nper-segment detections: {sum(len(r) for r, _ in per_seg)} faces in {frames_linear} frames")
    tmp.cleanup()


if __name__ == "__main__":
    main()
