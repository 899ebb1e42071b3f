"""Rule transcribe_shard (one shard of dialogues)."""

from ecem.logs import rule_logging
from ecem.transcribe.stage import run_shard

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_shard(sm.input.utterances, int(sm.wildcards.shard), sm.params.cfg["shards"], sm.params.cfg,
              sm.output[0], sm.threads)
