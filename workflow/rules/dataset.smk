# The dataset stage: MELD + ECEM JSON → samples, split, probed utterances, segments, prefix clips.
DATASET_OUTPUTS = [
    ANNOTATIONS,
    DATASET_STATISTICS,
    UTTERANCES,
    SEGMENTS,
    CLIPS,
    DATASET_QUALITY,
]


# Bookkeeping rules (seconds, little memory) run where Snakemake runs: never queued on a cluster.
localrules:
    split_samples,
    dataset_statistics,
    gather_clips,
    dataset_quality,


rule resolve_annotations:
    input:
        csvs=sources.inputs_of(config, "csvs", workflow),
        annotations=sources.inputs_of(config, "annotations", workflow),
    output:
        resolved=f"{ECEM}/resolved.parquet",
        quarantine=f"{ECEM}/quarantine.parquet",
    log:
        f"{LOGS}/resolve_annotations.log",
    conda:
        conda_env("dataset")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        meld=MELD_CFG,
        cfg=config_slice(config["dataset"], ("match", "drop_neutral")),
    script:
        "../scripts/dataset_resolve.py"


rule split_samples:
    input:
        resolved=rules.resolve_annotations.output.resolved,
    output:
        ANNOTATIONS,
    log:
        f"{LOGS}/split_samples.log",
    conda:
        conda_env("dataset")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        cfg=config["dataset"]["split"],
    script:
        "../scripts/dataset_split.py"


# Needs the annotations only (no clips): the metadata-only path's dataset statistics.
rule dataset_statistics:
    input:
        annotations=rules.split_samples.output[0],
    output:
        DATASET_STATISTICS,
    log:
        f"{LOGS}/dataset_statistics.log",
    conda:
        conda_env("dataset")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/dataset_statistics.py"


rule probe_utterances:
    input:
        resolved=rules.resolve_annotations.output.resolved,
        videos=sources.inputs_of(config, "videos", workflow),
    output:
        UTTERANCES,
    log:
        f"{LOGS}/probe_utterances.log",
    benchmark:
        f"{BENCHMARKS}/probe_utterances.tsv"
    conda:
        conda_env("dataset")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        meld=MELD_CFG,
        cfg=config["dataset"]["probe"],
    script:
        "../scripts/dataset_probe.py"


rule render_clips:
    input:
        resolved=rules.resolve_annotations.output.resolved,
        utterances=rules.probe_utterances.output[0],
    output:
        out_dir=directory(f"{ECEM}/render/shard-{{shard}}"),
        segments=f"{ECEM}/render/shard-{{shard}}.segments.parquet",
        clips=f"{ECEM}/render/shard-{{shard}}.clips.parquet",
    log:
        f"{LOGS}/render_clips/shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/render_clips/shard-{{shard}}.tsv"
    conda:
        conda_env("dataset")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        n_shards=config["dataset"]["render"]["shards"],
        dedup=config["dataset"]["dedup"],
        render=config["dataset"]["render"],
    script:
        "../scripts/dataset_render.py"


rule gather_clips:
    input:
        segments=expand(rules.render_clips.output.segments, shard=RENDER_SHARDS),
        clips=expand(rules.render_clips.output.clips, shard=RENDER_SHARDS),
    output:
        segments=SEGMENTS,
        clips=CLIPS,
    log:
        f"{LOGS}/gather_clips.log",
    conda:
        conda_env("dataset")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/dataset_gather.py"


rule dataset_quality:
    input:
        annotations=rules.split_samples.output[0],
        quarantine=rules.resolve_annotations.output.quarantine,
        resolved=rules.resolve_annotations.output.resolved,
        utterances=rules.probe_utterances.output[0],
        segments=rules.gather_clips.output.segments,
        clips=rules.gather_clips.output.clips,
    output:
        report(
            DATASET_QUALITY, caption="../report/quality.rst", category="Data quality"
        ),
    log:
        f"{LOGS}/dataset_quality.log",
    conda:
        conda_env("dataset")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/dataset_quality.py"
