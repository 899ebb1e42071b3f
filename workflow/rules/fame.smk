# FAME-Net: the offline tiny LLM, then per experiment: examples (prompts) → train → generate.
# Multi-GPU training: set train.num_gpus > 1; the same rule then runs `accelerate launch
# --num_processes N --multi_gpu -m ecem.fame.launch train ...` (DDP, one process per GPU) and
# declares resources gpu=N (ecem.resources.gpus), which the SLURM executor requests with the job.
import re

from ecem.fame import workflow as fame_wf

FAME = config["fame"]
FAME_EXPERIMENT = "|".join(re.escape(name) for name in EXPERIMENTS)
# `fame.llm` is a hub id, a local path (read only) or random:<name>, a tiny random LLaMA that rule
# tiny_llm builds under resources/models/ (ecem.model_refs); the rules get where it lives.
FAME_LLM = model_refs.location(FAME["llm"])
FAME_LLM_INPUT = model_refs.local_input(FAME["llm"])
FAME_PARAMS = {**{k: v for k, v in FAME.items() if k != "tiny_llm"}, "llm": FAME_LLM}
FAME_OUTPUTS = [
    *expand(PREDICTIONS, run=EXPERIMENTS),
    *expand(RELIANCE, run=EXPERIMENTS),
    STAGE_QUALITY["train"],
]


# Bookkeeping rules (seconds, little memory) run where Snakemake runs: never queued on a cluster.
localrules:
    fame_examples,
    fame_quality,


if model_refs.is_random(FAME["llm"]):

    rule tiny_llm:
        input:
            annotations=ANNOTATIONS,
            utterances=UTTERANCES,
        output:
            directory(FAME_LLM),
        log:
            f"{LOGS}/tiny_llm.log",
        conda:
            conda_env("fame")
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            fame={
                "tiny_llm": FAME["tiny_llm"],
                "prompt": config_slice(
                    FAME["prompt"], ("video_placeholder", "audio_placeholder")
                ),
            },
        script:
            "../scripts/fame_tiny_llm.py"


rule fame_examples:
    input:
        unpack(
            fame_wf.by_experiment(
                EXPERIMENTS,
                fame_wf.example_inputs,
                {
                    "annotations": ANNOTATIONS,
                    "clips": CLIPS,
                    "utterances": UTTERANCES,
                    "features": VIDEO_TOKENS,
                    "audio": AUDIO_TOKENS,
                    "faces": FACE_SUMMARY,
                    "transcripts": TRANSCRIPTS,
                },
            )
        ),
    output:
        f"{RUNS}/{{experiment}}/examples.parquet",
    log:
        f"{LOGS}/fame_examples/{{experiment}}.log",
    wildcard_constraints:
        experiment=FAME_EXPERIMENT,
    conda:
        conda_env("fame")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        experiment=lambda w: EXPERIMENTS[w.experiment],
        prompt=FAME["prompt"],
        text_policy=fame_wf.by_experiment(
            EXPERIMENTS, fame_wf.text_policy_param, config
        ),
    script:
        "../scripts/fame_examples.py"


# What training and generation both read of an experiment (generation adds the trained weights).
FAME_RUN_INPUTS = {
    "examples": rules.fame_examples.output[0],
    "features": fame_wf.by_experiment(
        EXPERIMENTS, fame_wf.features_input, VIDEO_TOKENS
    ),
    "audio": fame_wf.by_experiment(EXPERIMENTS, fame_wf.audio_input, AUDIO_TOKENS),
    "llm": FAME_LLM_INPUT,
}


rule fame_train:
    input:
        **FAME_RUN_INPUTS,
    output:
        model=f"{RUNS}/{{experiment}}/model.safetensors",
        card=RUN_CARD.format(run="{experiment}"),
    log:
        f"{LOGS}/fame_train/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/fame_train/{{experiment}}.tsv"
    wildcard_constraints:
        experiment=FAME_EXPERIMENT,
    conda:
        conda_env("fame")
    threads: threads(config["train"])
    resources:
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime"],
        gpu=gpus(config["train"]),
    params:
        fame=FAME_PARAMS,
        train=config["train"],
        ckpt_dir=f"{RUNS}/{{experiment}}/checkpoints",
    script:
        "../scripts/fame_train.py"


# Generation and the modality-reliance check (the answer loss with each input permuted, on the
# same samples, device and batch size: ecem.fame.reliance) share one job: the LLM loads once.
rule fame_generate:
    input:
        **FAME_RUN_INPUTS,
        model=rules.fame_train.output.model,
    output:
        predictions=PREDICTIONS.format(run="{experiment}"),
        reliance=RELIANCE.format(run="{experiment}"),
    log:
        f"{LOGS}/fame_generate/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/fame_generate/{{experiment}}.tsv"
    wildcard_constraints:
        experiment=FAME_EXPERIMENT,
    conda:
        conda_env("fame")
    threads: threads(config["generate"])
    resources:
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime"],
        gpu=gpus(config["generate"]),
    params:
        fame=FAME_PARAMS,
        generate=config["generate"],
        reliance=config["reliance"],
        max_length=config["train"]["max_length"],
    script:
        "../scripts/fame_generate.py"


rule fame_quality:
    input:
        cards=expand(rules.fame_train.output.card, experiment=EXPERIMENTS),
        predictions=expand(
            rules.fame_generate.output.predictions, experiment=EXPERIMENTS
        ),
        examples=expand(rules.fame_examples.output[0], experiment=EXPERIMENTS),
    output:
        report(
            STAGE_QUALITY["train"],
            caption="../report/quality.rst",
            category="Data quality",
        ),
    log:
        f"{LOGS}/fame_quality.log",
    conda:
        conda_env("fame")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        experiments=list(EXPERIMENTS),
    script:
        "../scripts/fame_quality.py"
