"""Rule evaluate_baseline (one baseline → its predictions.parquet)."""

from ecem.evaluate.stage import run_baseline_stage
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_baseline_stage(
        sm.wildcards.baseline, sm.params.cfg, sm.params.splits, sm.input.annotations, sm.output[0]
    )
