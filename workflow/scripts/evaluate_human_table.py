"""Rule human_eval_table (filled rating sheets → paper Table 5 with agreement)."""

from ecem.evaluate.human_eval import aggregate, write_table5
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    means, agree = aggregate(list(sm.input.filled), sm.input.key)
    write_table5(means, agree, sm.output.md, sm.output.csv, sm.output.agreement)
