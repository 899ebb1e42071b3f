"""Rule clip_features_shard (one shard of dialogues)."""

from ecem.features.video_stage import run_extract
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_extract(sm.input.clips, sm.input.segments, int(sm.wildcards.shard), sm.params.n_shards,
                sm.params.cfg, sm.output.tokens, sm.output.stats, sm.threads)
