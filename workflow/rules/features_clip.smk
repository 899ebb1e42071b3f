# Spatio-temporal video tokens (features.clip; CLIP, or the demo's bundled DINOv2): per-shard
# extraction, gathered into one file. A random:<name> model is a tiny random CLIP built here.
import ecem.features.clip_workflow as clip_wf

CLIP_CFG = config["features"]["clip"]
CLIP_SHARDS = range(CLIP_CFG["shards"])
CLIP_DIR = f"{RESULTS}/features/clip"
CLIP_OUTPUTS = [CLIP_FEATURES, STAGE_QUALITY["clip_features"]]
CLIP_MODEL_INPUT = model_refs.local_input(CLIP_CFG["model"])
CLIP_RENDERED_INPUT = clip_wf.rendered_input(CLIP_CFG, RENDER_DIRS)


# Bookkeeping rules (seconds, little memory) run where Snakemake runs: never queued on a cluster.
localrules:
    clip_features,


if model_refs.is_random(CLIP_CFG["model"]):

    rule build_tiny_clip:
        output:
            directory(model_refs.location(CLIP_CFG["model"])),
        log:
            f"{LOGS}/build_tiny_clip.log",
        conda:
            conda_env("features")
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        params:
            image_size=CLIP_CFG["image_size"],
            tiny=CLIP_CFG["tiny"],
        script:
            "../scripts/features_clip_tiny.py"


rule clip_features_shard:
    input:
        clips=CLIPS,
        segments=SEGMENTS,
        model=CLIP_MODEL_INPUT,
        rendered=CLIP_RENDERED_INPUT,
    output:
        tokens=temp(f"{CLIP_DIR}/shard-{{shard}}.parquet"),
        stats=temp(f"{CLIP_DIR}/shard-{{shard}}.json"),
    log:
        f"{LOGS}/clip_features/shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/clip_features/shard-{{shard}}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        conda_env("features")
    threads: threads(CLIP_CFG)
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpus(CLIP_CFG),
    params:
        n_shards=CLIP_CFG["shards"],
        cfg={
            **{k: v for k, v in CLIP_CFG.items() if k != "tiny"},
            "model": model_refs.location(CLIP_CFG["model"]),
        },
    script:
        "../scripts/features_clip_shard.py"


rule clip_features:
    input:
        tokens=expand(rules.clip_features_shard.output.tokens, shard=CLIP_SHARDS),
        stats=expand(rules.clip_features_shard.output.stats, shard=CLIP_SHARDS),
        clips=CLIPS,
    output:
        tokens=CLIP_FEATURES,
        array=CLIP_TOKEN_ARRAY,
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
