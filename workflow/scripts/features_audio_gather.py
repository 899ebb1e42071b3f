"""Rule audio_features: shards → results/features/audio.parquet (+ its token array
audio.tokens.npy) + results/quality/audio_features.json."""

from ecem.features.audio_stage import run_gather
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_gather(sm.input.tokens, sm.input.stats, sm.input.clips, sm.output.tokens, sm.output.array,
               sm.output.quality)
