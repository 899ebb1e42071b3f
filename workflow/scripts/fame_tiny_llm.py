"""Rule tiny_llm."""

from ecem.fame.tiny import run_tiny_llm
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_tiny_llm(sm.input.annotations, sm.input.utterances, sm.params.fame, sm.output[0])
