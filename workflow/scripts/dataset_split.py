"""Rule split_samples."""

from ecem.dataset.stage import run_split
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_split(sm.input.resolved, sm.params.cfg, sm.output[0])
