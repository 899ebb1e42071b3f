"""Rule transcribe_quality."""

from ecem.logs import rule_logging
from ecem.transcribe.stage import run_quality

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_quality(sm.input.transcripts, sm.input.utterances, sm.params.policy, sm.output[0])
