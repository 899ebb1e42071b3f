"""Rule dataset_statistics."""

from ecem.dataset.stage import run_statistics
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_statistics(sm.input.annotations, sm.output[0])
