"""Rule evaluate_metrics (one run → per-sample scores + metrics.json with CIs)."""

import torch

from ecem.evaluate.stage import run_metrics_stage
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    torch.set_num_threads(sm.threads)
    run_metrics_stage(
        sm.wildcards.run,
        sm.input.predictions,
        sm.input.annotations,
        sm.params.cfg,
        sm.output.scores,
        sm.output.metrics,
    )
