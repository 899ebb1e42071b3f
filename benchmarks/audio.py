"""Benchmark: the audio-feature stage's cost per utterance against the transcription stage on the
same audio, and its growth with dialogue length.

    python benchmarks/audio.py [--lengths 5,10,20] [--threads 1] [--workdir /tmp/audio-bench]

Makes one synthetic dialogue per length (eSpeak NG speech, one sentence per utterance, muxed by
ffmpeg into 10 fps video + 16 kHz mono AAC segments, as the render stage writes them), runs the
stage's shard extraction (`ecem.features.audio_stage.extract_shard`: every prefix sample of the
dialogue gets A tokens) with the bundled tiny.en encoder, and transcribes the longest dialogue's
utterances with the transcription stage's `Transcriber` (same model, VAD + beam 5). Costs are
CPU seconds (user + system, this process and its children, `resource.getrusage`), model loading
excluded. The growth exponent is the slope of log(CPU-s) against log(utterances): 1 is linear,
2 would mean each prefix were encoded from scratch.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import wave
from pathlib import Path

import numpy as np
import pandas as pd

SENTENCES = [
    "I can't believe you did that again.", "Where were you last night?", "That is the best news ever!",
    "Please, just listen to me for a second.", "We were on a break!", "Okay, fine, I get it.",
    "Could this day be any longer?", "Nobody told me about the party.", "You look great today.",
    "I am so sorry about your car.",
]


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def make_segments(out: Path, n: int) -> list[str]:
    """`n` speech segments (mp4: gray video + AAC 16 kHz mono), sentence k % 10 at varying speed."""
    from ecem.corpus.speech import synthesize
    from ecem.ffmpeg import run_ffmpeg

    paths = []
    for k in range(n):
        path = out / f"utt{k}.mp4"
        if not path.exists():
            samples, rate = synthesize(SENTENCES[k % len(SENTENCES)], words_per_minute=140 + 5 * (k % 7))
            wav = out / f"utt{k}.wav"
            with wave.open(str(wav), "wb") as fh:
                fh.setnchannels(1)
                fh.setsampwidth(2)
                fh.setframerate(rate)
                fh.writeframes(samples.astype("<i2").tobytes())
            seconds = samples.size / rate
            run_ffmpeg(["-f", "lavfi", "-i", f"color=c=gray:s=64x48:r=10:d={seconds:.3f}", "-i", str(wav),
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "16000", "-ac", "1",
                        "-shortest", str(path)])
            wav.unlink()
        paths.append(str(path))
    return paths


def dialogue_tables(out: Path, dia: int, paths: list[str]) -> tuple[str, str]:
    """segments.parquet + clips.parquet of one dialogue: a sample per utterance (its prefix)."""
    from ecem.artifacts import write_table

    segs = [{"meld_split": "train", "dialogue_id": dia, "utterance_id": u, "segment_path": p,
             "status": "ok", "status_detail": ""} for u, p in enumerate(paths)]
    clips = [{"sample_id": f"train/dia{dia}_utt{u}", "meld_split": "train", "dialogue_id": dia,
              "utterance_id": u, "status": "ok", "status_detail": "",
              "segments": [{"utterance_id": v, "first_frame": 0, "n_frames": 1} for v in range(u + 1)]}
             for u in range(len(paths))]
    write_table(pd.DataFrame(segs), out / f"segments-{dia}.parquet", "dataset")
    write_table(pd.DataFrame(clips), out / f"clips-{dia}.parquet", "dataset")
    return str(out / f"clips-{dia}.parquet"), str(out / f"segments-{dia}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="5,10,20")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-tokens", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ecem.audio_decode import load_audio
    from ecem.features.audio_encoder import WINDOW_S, CT2WhisperEncoder
    from ecem.features.audio_stage import extract_shard
    from ecem.transcribe.asr import AsrSettings, Transcriber

    lengths = [int(x) for x in args.lengths.split(",")]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="audio-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    paths = make_segments(work, max(lengths))
    audio_s = [load_audio(p).size / 16000 for p in paths]
    cfg = {"model": "bundled:tiny.en", "num_tokens": args.num_tokens, "device": "cpu", "compute_type": "int8",
           "silence_dbfs": -60.0, "shards": 1, "batch_size": 8}
    encoder = CT2WhisperEncoder("bundled:tiny.en", "cpu", "int8", args.threads, batch_size=8)
    encoder.hidden_size  # the one-off probe encode, outside the timings

    rows = []
    for n in lengths:
        clips, segments = dialogue_tables(work, n, paths[:n])
        windows_before = encoder.windows_encoded
        t0 = cpu_seconds()
        stats = extract_shard(clips, segments, 0, 1, cfg, str(work / f"audio-{n}.parquet"), encoder=encoder)
        cpu = cpu_seconds() - t0
        assert stats["with_features"] == n, stats["excluded"]
        packed = int(np.ceil(sum(audio_s[:n]) / WINDOW_S))
        rows.append((n, sum(audio_s[:n]), cpu, encoder.windows_encoded - windows_before, packed))

    n_max = max(lengths)
    transcriber = Transcriber(AsrSettings(model="bundled:tiny.en", device="cpu", compute_type="int8",
                                          batch_size=8, threads=args.threads))
    audios = [load_audio(p) for p in paths[:n_max]]
    t0 = cpu_seconds()
    transcripts = transcriber.transcribe(audios)
    asr_cpu = cpu_seconds() - t0
    assert sum(t.status == "ok" for t in transcripts) > 0

    print(f"\nAudio features vs transcription — bundled tiny.en (CTranslate2 int8, {args.threads} "
          f"thread(s)), "
          f"A = {args.num_tokens}; mean utterance {np.mean(audio_s):.2f} s; {os.cpu_count()} logical cores\n")
    head = (f"{'utterances':>10s} {'audio s':>8s} {'samples':>7s} {'CPU s':>7s} {'CPU s/utt':>9s} "
            f"{'windows':>7s} {'packed':>6s}")
    print(head)
    print("-" * len(head))
    for n, secs, cpu, windows, packed in rows:
        print(f"{n:10d} {secs:8.1f} {n:7d} {cpu:7.2f} {cpu / n:9.3f} {windows:7d} {packed:6d}")
    x, y = np.log([r[0] for r in rows]), np.log([r[2] for r in rows])
    exponent = float(np.polyfit(x, y, 1)[0]) if len(rows) > 1 else float("nan")
    print(f"\nfitted growth: CPU-s ∝ utterances^{exponent:.2f} (1 = linear; all prefix samples pooled)")
    per_utt = rows[-1][2] / rows[-1][0]
    print(f"transcription stage (Transcriber: VAD + encode + beam 5) on the same {n_max} utterances: "
          f"{asr_cpu:.2f} CPU s = {asr_cpu / n_max:.3f} CPU s/utterance; audio features "
          f"{per_utt:.3f} CPU s/utterance ({per_utt / (asr_cpu / n_max):.2f}× transcription)")
    print("windows = 30 s encoder windows run (one per segment); packed = windows if a dialogue's "
          "segments were packed into shared 30 s windows (not done: a segment's frames would then "
          "depend on its neighbours)")


if __name__ == "__main__":
    main()
