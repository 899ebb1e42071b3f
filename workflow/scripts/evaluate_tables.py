"""Rule evaluate_tables (paper Tables 2/3/4, paired bootstrap, modality reliance; Markdown and CSV)."""

from pathlib import Path

from ecem.evaluate.stage import run_tables_stage
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_tables_stage(
        sm.params.runs,
        sm.input.metrics,
        sm.input.scores,
        dict(zip(sm.params.experiments, sm.input.cards, strict=True)),
        dict(zip(sm.params.experiments, sm.input.reliance, strict=True)),
        sm.params.cfg,
        str(Path(sm.output[0]).parent),
    )
