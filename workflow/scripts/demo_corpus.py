"""Rule demo_corpus: generate the offline MELD-format demo corpus."""

from ecem.corpus.build import build_demo_corpus
from ecem.logs import rule_logging
from ecem.meld import MeldLayout

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    build_demo_corpus(
        MeldLayout.from_config(sm.params.meld),
        sm.output.annotations,
        sm.output.truth,
        sm.params.cfg,
        threads=sm.threads,
    )
