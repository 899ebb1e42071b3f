# Audio tokens (features.audio, modality A): each deduplicated segment's audio encoded once by a
# speech encoder (demo: the bundled Whisper tiny.en's encoder), pooled into A tokens per sample
# over its prefix; per-shard extraction, gathered into one file. The bundled model is read from
# its package in place (like transcribe.model), so only a local model directory is an input.
AUDIO_CFG = config["features"]["audio"]
AUDIO_SHARDS = range(AUDIO_CFG["shards"])
AUDIO_DIR = f"{RESULTS}/features/audio"
AUDIO_QUALITY = f"{RESULTS}/quality/audio_features.json"
AUDIO_OUTPUTS = [AUDIO_TOKENS, AUDIO_TOKEN_ARRAY, AUDIO_QUALITY] if USES_AUDIO else []
AUDIO_MODEL_INPUT = (
    []
    if model_refs.is_bundled(AUDIO_CFG["model"])
    else model_refs.local_input(AUDIO_CFG["model"])
)


# Bookkeeping rules (seconds, little memory) run where Snakemake runs: never queued on a cluster.
localrules:
    audio_features,


rule audio_features_shard:
    input:
        clips=CLIPS,
        segments=SEGMENTS,
        rendered=RENDER_DIRS,
        model=AUDIO_MODEL_INPUT,
    output:
        tokens=temp(f"{AUDIO_DIR}/shard-{{shard}}.parquet"),
        stats=temp(f"{AUDIO_DIR}/shard-{{shard}}.json"),
    log:
        f"{LOGS}/audio_features/shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/audio_features/shard-{{shard}}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        conda_env("features")
    threads: threads(AUDIO_CFG)
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=gpus(AUDIO_CFG),
    params:
        cfg=AUDIO_CFG,
    script:
        "../scripts/features_audio_shard.py"


rule audio_features:
    input:
        tokens=expand(rules.audio_features_shard.output.tokens, shard=AUDIO_SHARDS),
        stats=expand(rules.audio_features_shard.output.stats, shard=AUDIO_SHARDS),
        clips=CLIPS,
    output:
        tokens=AUDIO_TOKENS,
        array=AUDIO_TOKEN_ARRAY,
        quality=report(
            AUDIO_QUALITY,
            caption="../report/quality.rst",
            category="Data quality",
        ),
    log:
        f"{LOGS}/audio_features.log",
    conda:
        conda_env("features")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/features_audio_gather.py"
