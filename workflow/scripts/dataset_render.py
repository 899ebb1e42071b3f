"""Rule render_clips (one shard)."""

from ecem.dataset.stage import run_render
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_render(sm.input.resolved, sm.input.utterances, int(sm.wildcards.shard), sm.params.n_shards,
               sm.params.dedup, sm.params.render, sm.output.out_dir, sm.output.segments,
               sm.output.clips, sm.threads)
