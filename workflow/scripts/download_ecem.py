"""Rule download_ecem: fetch the ECEM annotation JSON and verify it."""

from ecem.download import fetch
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    fetch(sm.params.cfg["url"], sm.output[0], sm.params.cfg["sha256"])
