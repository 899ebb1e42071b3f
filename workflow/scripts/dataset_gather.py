"""Rule gather_clips."""

from ecem.dataset.stage import run_gather
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_gather(sm.input.segments, sm.input.clips, sm.output.segments, sm.output.clips)
