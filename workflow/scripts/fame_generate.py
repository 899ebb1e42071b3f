"""Rule fame_generate (predictions and the modality-reliance check)."""

from ecem.fame.stage import run_generate
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_generate(sm.wildcards.experiment, sm.input.examples, (list(sm.input.features) or [None])[0],
                 sm.params.fame["llm"], sm.input.model, sm.params.fame, sm.params.generate, sm.params.reliance,
                 sm.params.max_length, sm.output.predictions, sm.output.reliance, sm.threads,
                 (list(sm.input.audio) or [None])[0])
