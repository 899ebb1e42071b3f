"""Rule dataset_quality."""

from ecem.dataset.stage import run_quality
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_quality(sm.input.annotations, sm.input.quarantine, sm.input.resolved, sm.input.utterances,
                sm.input.segments, sm.input.clips, sm.output[0])
