"""Rule build_tiny_clip: a tiny random CLIP vision tower (features.clip.model: random:<name>)."""

from ecem.features.video_stage import run_build_tiny
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_build_tiny(sm.output[0], sm.params.image_size, sm.params.tiny)
