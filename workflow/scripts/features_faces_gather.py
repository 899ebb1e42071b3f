"""Rule faces_gather: concatenate the shards into faces.parquet and face_segments.parquet."""

from ecem.faces.stage import run_gather
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_gather(list(sm.input.faces), list(sm.input.segments), sm.output.faces, sm.output.segments)
