"""Rule evaluate_report (results/report.html, self-contained)."""

from pathlib import Path

from ecem.evaluate.report import build_report
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    build_report(
        annotations=sm.input.annotations,
        statistics=sm.input.statistics,
        clips=sm.input.clips,
        quality=dict(zip(sm.params.quality_names, sm.input.quality, strict=True)),
        metrics=dict(zip(sm.params.runs, sm.input.metrics, strict=True)),
        predictions=dict(zip(sm.params.runs, sm.input.predictions, strict=True)),
        cards=dict(zip(sm.params.experiments, sm.input.cards, strict=True)),
        transcripts=sm.input.transcripts,
        face_summary=sm.input.face_summary,
        model_files={"transcripts": sm.input.transcripts, "CLIP features": sm.input.clip_features,
                     "faces": sm.input.faces},
        tables={Path(p).stem: p for p in sm.input.tables if p.endswith(".csv")},
        cfg=sm.params.cfg,
        splits=sm.params.splits,
        unrun_baselines=sm.params.unrun,
        is_demo=sm.params.demo,
        out=sm.output[0],
    )
