"""Rule faces_shard (one shard of dialogues): detect faces, classify expressions, link tracks."""

from ecem.faces.stage import run_faces
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_faces(sm.input.segments, sm.params.cfg, int(sm.wildcards.shard), sm.params.n_shards,
              sm.output.faces, sm.output.segments, sm.threads)
