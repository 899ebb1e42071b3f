"""Rule download_meld: fetch MELD.Raw, verify it, unpack it into the download cache."""

from pathlib import Path

from ecem.download import fetch, unpack_into
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    root = Path(sm.params.root)
    archive = fetch(sm.params.cfg["url"], root.parent / "MELD.Raw.tar.gz", sm.params.cfg["sha256"])
    unpack_into(archive, root, [*sm.output.csvs, *sm.output.videos])
