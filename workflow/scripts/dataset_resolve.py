"""Rule resolve_annotations."""

from ecem.dataset.stage import run_resolve
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_resolve(sm.params.meld, sm.input.annotations[0], sm.params.cfg, sm.output.resolved,
                sm.output.quarantine)
