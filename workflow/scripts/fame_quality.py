"""Rule fame_quality."""

from ecem.fame.stage import run_quality
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_quality(sm.params.experiments, list(sm.input.cards), list(sm.input.predictions),
                list(sm.input.examples), sm.output[0])
