# The transcription stage: WhisperX re-transcription of every utterance clip a sample touches,
# sharded by dialogue (one model load per shard job), gathered, and summarised for the report.
TRANSCRIBE = f"{RESULTS}/transcribe"
TRANSCRIBE_SHARDS = range(config["transcribe"]["shards"])
TRANSCRIBE_OUTPUTS = [TRANSCRIPTS, STAGE_QUALITY["transcribe"]]


# Bookkeeping rules (seconds, little memory) run where Snakemake runs: never queued on a cluster.
localrules:
    gather_transcripts,
    transcribe_quality,


rule transcribe_shard:
    input:
        utterances=UTTERANCES,
    output:
        f"{TRANSCRIBE}/shard-{{shard}}.parquet",
    log:
        f"{LOGS}/transcribe/shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/transcribe/shard-{{shard}}.tsv"
    conda:
        conda_env("transcribe")
    threads: threads(config["transcribe"])
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=gpus(config["transcribe"]),
    params:
        cfg=config["transcribe"],
    script:
        "../scripts/transcribe_shard.py"


rule gather_transcripts:
    input:
        parts=expand(rules.transcribe_shard.output[0], shard=TRANSCRIBE_SHARDS),
        utterances=UTTERANCES,
    output:
        TRANSCRIPTS,
    log:
        f"{LOGS}/gather_transcripts.log",
    conda:
        conda_env("transcribe")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/transcribe_gather.py"


rule transcribe_quality:
    input:
        transcripts=rules.gather_transcripts.output[0],
        utterances=UTTERANCES,
    output:
        report(
            STAGE_QUALITY["transcribe"],
            caption="../report/quality.rst",
            category="Data quality",
        ),
    log:
        f"{LOGS}/transcribe_quality.log",
    conda:
        conda_env("transcribe")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        policy=config["text_policy"],
    script:
        "../scripts/transcribe_quality.py"
