"""Rule human_eval_sheet (blinded rating sheet CSV + printable HTML + the separate key)."""

from ecem.artifacts import read_table
from ecem.evaluate.human_eval import export_sheets
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm) as log:
    preds = {run: read_table(p) for run, p in zip(sm.params.runs, sm.input.predictions, strict=True)}
    n = export_sheets(
        read_table(sm.input.annotations),
        preds,
        sm.params.cfg,
        sm.params.splits,
        sm.output.sheet,
        sm.output.html,
        sm.output.key,
    )
    log.info("%d items to rate", n)
