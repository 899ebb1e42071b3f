"""The `ecem` command (installed by setup.sh): `ecem explain …` (see `ecem explain --help`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from ecem.meld import EMOTIONS


def _explain_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain", help="ask a trained FAME-Net run why a speaker in new clips feels an emotion",
        description="Explain why SPEAKER feels EMOTION in CLIP (after EARLIER clips of the dialogue, in dialogue "
                    "order), with a trained FAME-Net run rebuilt exactly as it was trained: its video, audio and "
                    "facial-emotion inputs are made by the workflow's own stages with the run's settings.")
    p.add_argument("clip", help="the target utterance's clip")
    p.add_argument("earlier", nargs="*", help="earlier clips of the dialogue, in dialogue order (the prefix)")
    p.add_argument("--run", required=True, help="a trained run, e.g. results/runs/V+T+E")
    p.add_argument("--speaker", required=True)
    p.add_argument("--emotion", required=True, help=f"one of {', '.join(EMOTIONS)}")
    text = p.add_mutually_exclusive_group()
    text.add_argument("--utterance", help="what the speaker says in the target clip")
    text.add_argument("--transcribe", action="store_true", help="transcribe the target clip with the run's ASR")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default)")
    p.add_argument("--max-overlap", type=int, default=12, help="frames consecutive clips may share (default 12)")
    p.add_argument("--json", action="store_true", help="print the explanation with its prompt, the face emotion, "
                                                        "the numbers of video/audio tokens and the models")
    p.add_argument("-v", "--verbose", action="store_true", help="log what each stage does")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecem", description="The ECEM / FAME-Net pipeline's command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    _explain_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    from ecem.explain import ExplainError, explain

    try:
        result = explain(args.run, [*args.earlier, args.clip], args.speaker, args.emotion, args.utterance,
                         args.transcribe, args.device, args.max_overlap)
    except (ExplainError, RuntimeError) as err:
        print(f"ecem explain: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        print(result.explanation)
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
