# Facial emotion (features.faces): per-shard detection + expression over utterance segments,
# gathered into faces.parquet, then the per-sample E_cls summary.
FACES_CFG = config["features"]["faces"]
FACES_SHARDS = range(FACES_CFG["shards"])
FACES_DIR = f"{RESULTS}/features/faces"
FACE_SEGMENTS = f"{RESULTS}/features/face_segments.parquet"
FACES_OUTPUTS = [FACES_TABLE, FACE_SUMMARY, STAGE_QUALITY["faces"]]


# Bookkeeping rules (seconds, little memory) run where Snakemake runs: never queued on a cluster.
localrules:
    faces_gather,
    face_summary,


rule faces_shard:
    input:
        segments=SEGMENTS,
    output:
        faces=temp(f"{FACES_DIR}/shard-{{shard}}.faces.parquet"),
        segments=temp(f"{FACES_DIR}/shard-{{shard}}.segments.parquet"),
    log:
        f"{LOGS}/faces/shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/faces/shard-{{shard}}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        conda_env("faces")
    threads: threads(FACES_CFG)
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=gpus(FACES_CFG),
    params:
        n_shards=FACES_CFG["shards"],
        cfg={k: v for k, v in FACES_CFG.items() if k != "summary"},
    script:
        "../scripts/features_faces_shard.py"


rule faces_gather:
    input:
        faces=expand(rules.faces_shard.output.faces, shard=FACES_SHARDS),
        segments=expand(rules.faces_shard.output.segments, shard=FACES_SHARDS),
    output:
        faces=FACES_TABLE,
        segments=FACE_SEGMENTS,
    log:
        f"{LOGS}/faces_gather.log",
    conda:
        conda_env("faces")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/features_faces_gather.py"


rule face_summary:
    input:
        clips=CLIPS,
        faces=rules.faces_gather.output.faces,
        segments=rules.faces_gather.output.segments,
    output:
        summary=FACE_SUMMARY,
        quality=report(
            STAGE_QUALITY["faces"],
            caption="../report/quality.rst",
            category="Data quality",
        ),
    log:
        f"{LOGS}/face_summary.log",
    conda:
        conda_env("faces")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        cfg=FACES_CFG["summary"],
    script:
        "../scripts/features_faces_summary.py"
