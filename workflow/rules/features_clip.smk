# Spatio-temporal video tokens (features.clip; CLIP, or the demo's bundled DINOv2): per-shard
# extraction, gathered into one file. A random:<name> model is a tiny random CLIP built here.
import ecem.features.video_workflow as video_wf

VIDEO_CFG = config["features"]["clip"]
VIDEO_SHARDS = range(VIDEO_CFG["shards"])
VIDEO_DIR = f"{RESULTS}/features/clip"
VIDEO_OUTPUTS = [VIDEO_TOKENS, STAGE_QUALITY["clip_features"]]
VIDEO_MODEL_INPUT = model_refs.local_input(VIDEO_CFG["model"])
VIDEO_RENDERED_INPUT = video_wf.rendered_input(VIDEO_CFG, RENDER_DIRS)


# Bookkeeping rules (seconds, little memory) run where Snakemake runs: never queued on a cluster.
localrules:
    clip_features,


if model_refs.is_random(VIDEO_CFG["model"]):

    rule build_tiny_clip:
        output:
            directory(model_refs.location(VIDEO_CFG["model"])),
        log:
            f"{LOGS}/build_tiny_clip.log",
        conda:
            conda_env("features")
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        params:
            image_size=VIDEO_CFG["image_size"],
            tiny=VIDEO_CFG["tiny"],
        script:
            "../scripts/features_clip_tiny.py"


rule clip_features_shard:
    input:
        clips=CLIPS,
        segments=SEGMENTS,
        model=VIDEO_MODEL_INPUT,
        rendered=VIDEO_RENDERED_INPUT,
    output:
        tokens=temp(f"{VIDEO_DIR}/shard-{{shard}}.parquet"),
        stats=temp(f"{VIDEO_DIR}/shard-{{shard}}.json"),
    log:
        f"{LOGS}/clip_features/shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/clip_features/shard-{{shard}}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        conda_env("features")
    threads: threads(VIDEO_CFG)
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpus(VIDEO_CFG),
    params:
        n_shards=VIDEO_CFG["shards"],
        cfg={
            **{k: v for k, v in VIDEO_CFG.items() if k != "tiny"},
            "model": model_refs.location(VIDEO_CFG["model"]),
        },
    script:
        "../scripts/features_clip_shard.py"


rule clip_features:
    input:
        tokens=expand(rules.clip_features_shard.output.tokens, shard=VIDEO_SHARDS),
        stats=expand(rules.clip_features_shard.output.stats, shard=VIDEO_SHARDS),
        clips=CLIPS,
    output:
        tokens=VIDEO_TOKENS,
        array=VIDEO_TOKEN_ARRAY,
        quality=report(
            STAGE_QUALITY["clip_features"],
            caption="../report/quality.rst",
            category="Data quality",
        ),
    log:
        f"{LOGS}/clip_features.log",
    conda:
        conda_env("features")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/features_clip_gather.py"
