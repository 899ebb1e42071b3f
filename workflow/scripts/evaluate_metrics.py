"""Rule evaluate_metrics (one run → per-sample scores + metrics.json with CIs)."""

from ecem.evaluate.stage import peer_predictions, run_scoring_stage
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_scoring_stage(
        [sm.wildcards.run],
        [sm.input.predictions],
        sm.input.annotations,
        sm.params.cfg,
        [sm.output.scores],
        [sm.output.metrics],
        sm.params.cache_dir,
        sm.params.code,
        peers=peer_predictions(sm.input.predictions),
        threads=sm.threads,
    )
