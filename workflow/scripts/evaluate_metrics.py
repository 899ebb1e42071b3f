"""Rule evaluate_metrics (every run → per-sample scores + metrics.json with CIs, one process)."""

import torch

from ecem.evaluate.stage import run_scoring_stage
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    torch.set_num_threads(sm.threads)
    run_scoring_stage(
        sm.params.runs,
        sm.input.predictions,
        sm.input.annotations,
        sm.params.cfg,
        sm.output.scores,
        sm.output.metrics,
        sm.params.cache_dir,
        sm.params.code,
    )
