"""Rule probe_utterances."""

from ecem.dataset.stage import run_probe
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_probe(sm.input.resolved, sm.params.meld, sm.params.cfg, sm.output[0], sm.threads)
