"""Rule clip_features: shards → results/features/clip.parquet (+ its token array
clip.tokens.npy) + results/quality/clip_features.json."""

from ecem.features.video_stage import run_gather
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_gather(sm.input.tokens, sm.input.stats, sm.input.clips, sm.output.tokens, sm.output.array,
               sm.output.quality)
