"""Rule evaluate_report (results/report.html, self-contained)."""

from pathlib import Path

from ecem.evaluate.report import build_report
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    quality = {"dataset": sm.input.dataset_quality}
    quality |= {Path(p).stem: p for p in sm.input.optional if "/quality/" in p and p.endswith(".json")}
    build_report(
        annotations=sm.input.annotations,
        clips=sm.input.clips,
        quality=quality,
        metrics=dict(zip(sm.params.runs, sm.input.metrics, strict=True)),
        predictions=dict(zip(sm.params.runs, sm.input.predictions, strict=True)),
        cards=dict(zip(sm.params.experiments, sm.input.cards, strict=True)),
        optional=list(sm.input.optional),
        paired_csv=next((p for p in sm.input.tables if p.endswith("paired.csv")), None),
        cfg=sm.params.cfg,
        splits=sm.params.splits,
        unrun_baselines=sm.params.unrun,
        is_demo=sm.params.demo,
        out=sm.output[0],
    )
