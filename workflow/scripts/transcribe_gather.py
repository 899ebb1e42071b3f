"""Rule gather_transcripts."""

from ecem.logs import rule_logging
from ecem.transcribe.stage import run_gather

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_gather(sm.input.parts, sm.input.utterances, sm.output[0])
