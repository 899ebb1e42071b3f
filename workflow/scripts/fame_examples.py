"""Rule fame_examples."""

from ecem.fame.examples import run_examples
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_examples(sm.wildcards.experiment, sm.params.experiment, sm.params.prompt, sm.params.text_policy,
                 sm.input.annotations, sm.input.clips, sm.input.utterances, sm.input.get("transcripts"),
                 sm.input.get("faces"), sm.input.get("features"), sm.output[0], sm.input.get("audio"))
