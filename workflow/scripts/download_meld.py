"""Rule download_meld: fetch MELD.Raw, verify it, unpack it under meld.root."""

from pathlib import Path

from ecem.download import fetch, unpack
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    root = Path(sm.params.root)
    archive = fetch(sm.params.cfg["url"], root.parent / "MELD.Raw.tar.gz", sm.params.cfg["sha256"])
    unpack(archive, root)
