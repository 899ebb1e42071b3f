"""Rule face_summary: per-sample facial emotion (E_cls) and the stage's quality record."""

from ecem.faces.stage import run_summary
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    run_summary(sm.input.clips, sm.input.faces, sm.input.segments, sm.params.cfg, sm.output.summary,
                sm.output.quality)
