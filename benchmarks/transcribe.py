"""Benchmark: real-time factor of the transcription stage's batched WhisperX path against a plain
sequential faster-whisper loop over the same clips with the same model (one run, same process).

    python benchmarks/transcribe.py --workdir /tmp/demo-wd [--repeat 3] [--device cpu]

`--workdir` is a Snakemake working directory where the dataset stage has run (it reads
`results/ecem/utterances.parquet` there and transcribes its `ok` clips; `--repeat` lists them
several times for steadier numbers). Real-time factor (RTF) = processing seconds / audio seconds
(lower is faster); model loading is timed separately and excluded. Both paths decode with the
same beam size and compute type; the baseline runs `WhisperModel.transcribe` once per clip
(no VAD, no batching), the stage path runs whisperx's pyannote VAD on every clip and decodes all
speech chunks in batches (`ecem.transcribe.asr.Transcriber`). WER is against MELD's text.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def _gpu_name(device: str) -> str:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} logical cores, {platform.processor() or platform.machine()})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--model", default="bundled:tiny.en")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--compute-type", default=None, help="default: int8 on CPU, float16 on CUDA")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,8,16")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from faster_whisper import WhisperModel

    from ecem.artifacts import read_table
    from ecem.devices import resolve_device
    from ecem.transcribe.asr import AsrSettings, Transcriber, load_audio, resolve_model
    from ecem.transcribe.wer import corpus_wer

    device = resolve_device(args.device)
    compute = args.compute_type or ("float16" if device == "cuda" else "int8")
    utt = read_table(args.workdir / "results/ecem/utterances.parquet")
    utt = utt[utt["status"] == "ok"]
    paths = [str(args.workdir / p) if not Path(p).is_absolute() else p for p in utt["video_path"]]
    refs = list(utt["text"]) * args.repeat
    audios = [load_audio(p) for p in paths] * args.repeat
    audio_s = sum(a.size for a in audios) / 16000
    model_path = resolve_model(args.model)
    rows = []

    t0 = time.perf_counter()
    baseline = WhisperModel(model_path, device=device, compute_type=compute, cpu_threads=args.threads)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    hyps = []
    for audio in audios:
        segments, _ = baseline.transcribe(audio, language="en", beam_size=args.beam_size,
                                          condition_on_previous_text=False, vad_filter=False)
        hyps.append(" ".join(s.text.strip() for s in segments))
    base_s = time.perf_counter() - t0
    rows.append(("faster-whisper sequential (baseline)", "-", load_s, base_s, corpus_wer(refs, hyps)))
    del baseline

    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        settings = AsrSettings(model=args.model, device=device, compute_type=compute, batch_size=bs,
                               beam_size=args.beam_size, threads=args.threads)
        t0 = time.perf_counter()
        tr = Transcriber(settings)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = tr.transcribe(audios)
        run_s = time.perf_counter() - t0
        rows.append(("whisperx batched (stage path)", str(bs), load_s, run_s,
                     corpus_wer(refs, [r.text for r in results])))
        del tr

    print(f"\nTranscription benchmark — {len(audios)} clips ({len(paths)} distinct × {args.repeat}), "
          f"{audio_s:.1f} s audio; model {args.model} ({compute}, beam {args.beam_size}); "
          f"device: {_gpu_name(device)}; threads {args.threads}\n")
    head = f"{'path':40s} {'batch':>5s} {'load s':>7s} {'run s':>7s} {'RTF':>7s} {'speedup':>8s} {'WER':>6s}"
    print(head)
    print("-" * len(head))
    for name, bs, load_s, run_s, w in rows:
        print(f"{name:40s} {bs:>5s} {load_s:7.2f} {run_s:7.2f} {run_s / audio_s:7.3f} "
              f"{base_s / run_s:7.2f}x {w:6.3f}")
    print("\nRTF = run seconds / audio seconds; speedup = baseline run s / this run s. "
          f"Mean clip length {np.mean([a.size for a in audios]) / 16000:.2f} s.")


if __name__ == "__main__":
    main()
