# The evaluate stage: baselines, metrics with bootstrap CIs per run, the paper's tables, the
# modality-reliance table, the HTML report and human-evaluation sheets. Runs = the selected FAME-Net
# experiments (config `experiments:`, `runs:`) + baselines (`baselines:`); both write
# results/runs/{run}/predictions.parquet, and each run is scored from its own predictions alone.
from ecem.evaluate.baselines import KINDS as BASELINE_KINDS
from ecem.evaluate.rules import baseline_params, names_regex
from ecem.evaluate.tables import TABLE_NAMES

HUMAN = f"{RESULTS}/human_eval"
EXPERIMENT_RUNS = list(EXPERIMENTS)
RUN_BASELINES = [b for b, c in BASELINES.items() if c["kind"] in BASELINE_KINDS]
UNRUN_BASELINES = {
    b: f"{c['kind']} baseline with {c['model']}: configured and validated, not run by this pipeline"
    for b, c in BASELINES.items()
    if c["kind"] == "video_llm"
}
EVAL_RUNS = EXPERIMENT_RUNS + RUN_BASELINES
EVAL_CFG = config["evaluate"]
METRICS_CFG = config_slice(
    EVAL_CFG,
    ("splits", "metrics", "device", "bootstrap", "bertscore", "sem_sim", "bleurt"),
)
EVALUATE_OUTPUTS = [
    *expand(f"{TABLES}/{{table}}.{{ext}}", table=TABLE_NAMES, ext=["md", "csv"]),
    REPORT,
    f"{HUMAN}/sheet.csv",
]
if EVAL_CFG["human_eval"]["filled"]:
    EVALUATE_OUTPUTS.append(f"{TABLES}/table5.md")


# Bookkeeping rules (seconds, little memory) run where Snakemake runs: never queued on a cluster.
localrules:
    evaluate_tables,
    human_eval_sheet,
    human_eval_table,


# Baselines need the annotations only: they run early, so that the first scoring job (below) finds
# their predictions and scores them with the FAME-Net runs' in one start of Java and the encoders.
rule evaluate_baseline:
    input:
        annotations=ANNOTATIONS,
        model=lambda w: model_refs.local_input(
            config["baselines"][w.baseline].get("model")
        ),
    output:
        PREDICTIONS.format(run="{baseline}"),
    log:
        f"{LOGS}/evaluate_baseline/{{baseline}}.log",
    wildcard_constraints:
        baseline=names_regex(RUN_BASELINES),
    conda:
        conda_env("evaluate")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        cfg=lambda w: baseline_params(config["baselines"][w.baseline]),
        splits=EVAL_CFG["splits"],
    script:
        "../scripts/evaluate_baseline.py"


# One job per run: a run's metrics need its own predictions only. Java and the encoders cost more
# than scoring a run, so the first job of a full evaluation also scores the other runs whose
# predictions are there and caches them (results/evaluate/cache); the low priority makes these jobs
# wait for the runs' generation, and the others then copy their scores from the cache.
rule evaluate_metrics:
    input:
        predictions=PREDICTIONS,
        annotations=ANNOTATIONS,
    output:
        scores=f"{RUNS}/{{run}}/scores.parquet",
        metrics=f"{RUNS}/{{run}}/metrics.json",
    log:
        f"{LOGS}/evaluate_metrics/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_metrics/{{run}}.tsv"
    wildcard_constraints:
        run=names_regex(EVAL_RUNS),
    priority: -1
    conda:
        conda_env("evaluate")
    threads: threads(EVAL_CFG)
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpus(EVAL_CFG),
    params:
        cfg=METRICS_CFG,
        cache_dir=f"{RESULTS}/evaluate/cache",
    script:
        "../scripts/evaluate_metrics.py"


rule evaluate_tables:
    input:
        metrics=expand(rules.evaluate_metrics.output.metrics, run=EVAL_RUNS),
        scores=expand(rules.evaluate_metrics.output.scores, run=EVAL_RUNS),
        cards=expand(RUN_CARD, run=EXPERIMENT_RUNS),
        reliance=expand(RELIANCE, run=EXPERIMENT_RUNS),
    output:
        report(
            expand(
                f"{TABLES}/{{table}}.{{ext}}", table=TABLE_NAMES, ext=["md", "csv"]
            ),
            caption="../report/tables.rst",
            category="Metrics",
        ),
    log:
        f"{LOGS}/evaluate_tables.log",
    conda:
        conda_env("evaluate")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        runs=EVAL_RUNS,
        experiments=EXPERIMENT_RUNS,
        cfg={**METRICS_CFG, "paired_reference": EVAL_CFG["paired_reference"]},
    script:
        "../scripts/evaluate_tables.py"


rule evaluate_report:
    input:
        metrics=expand(rules.evaluate_metrics.output.metrics, run=EVAL_RUNS),
        predictions=expand(PREDICTIONS, run=EVAL_RUNS),
        cards=expand(RUN_CARD, run=EXPERIMENT_RUNS),
        tables=rules.evaluate_tables.output,
        annotations=ANNOTATIONS,
        statistics=DATASET_STATISTICS,
        clips=CLIPS,
        transcripts=TRANSCRIPTS,
        face_summary=FACE_SUMMARY,
        clip_features=VIDEO_TOKENS,
        faces=FACES_TABLE,
        quality=list(STAGE_QUALITY.values()),
    output:
        report(REPORT, caption="../report/report.rst", category="Report"),
    log:
        f"{LOGS}/evaluate_report.log",
    conda:
        conda_env("evaluate")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        runs=EVAL_RUNS,
        experiments=EXPERIMENT_RUNS,
        cfg=EVAL_CFG["report"],
        splits=EVAL_CFG["splits"],
        unrun=UNRUN_BASELINES,
        demo=config["demo"]["enabled"],
        quality_names=list(STAGE_QUALITY),
    script:
        "../scripts/evaluate_report.py"


rule human_eval_sheet:
    input:
        predictions=expand(
            PREDICTIONS,
            run=EVAL_CFG["human_eval"]["runs"] or EVAL_RUNS,
        ),
        annotations=ANNOTATIONS,
    output:
        sheet=f"{HUMAN}/sheet.csv",
        html=report(
            f"{HUMAN}/sheet.html",
            caption="../report/human_eval.rst",
            category="Human evaluation",
        ),
        key=f"{HUMAN}/key.csv",
    log:
        f"{LOGS}/human_eval_sheet.log",
    conda:
        conda_env("evaluate")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        runs=EVAL_CFG["human_eval"]["runs"] or EVAL_RUNS,
        cfg={k: v for k, v in EVAL_CFG["human_eval"].items() if k != "filled"},
        splits=EVAL_CFG["splits"],
    script:
        "../scripts/evaluate_human_sheet.py"


rule human_eval_table:
    input:
        filled=EVAL_CFG["human_eval"]["filled"],
        key=rules.human_eval_sheet.output.key,
    output:
        md=f"{TABLES}/table5.md",
        csv=f"{TABLES}/table5.csv",
        agreement=f"{TABLES}/table5_agreement.csv",
    log:
        f"{LOGS}/human_eval_table.log",
    conda:
        conda_env("evaluate")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/evaluate_human_table.py"
