# The offline demo corpus: MELD.Raw layout + ECEM annotations, generated (never downloaded) into
# resources/demo/ only: with the demo on, config keys pointing elsewhere stop the run at start-up.
if config["demo"]["enabled"]:

    rule demo_corpus:
        output:
            csvs=[str(MELD.csv_path(s)) for s in MELD.splits],
            videos=[directory(str(MELD.video_dir(s))) for s in MELD.splits],
            annotations=ECEM_SOURCE.path,
            truth=config["demo"]["truth"],
        log:
            f"{LOGS}/demo_corpus.log",
        benchmark:
            f"{BENCHMARKS}/demo_corpus.tsv"
        # First, beside the model conversions: every other job waits for the corpus. One slot
        # is enough (each clip's ffmpeg threads itself), so a conversion runs alongside.
        priority: 1
        conda:
            conda_env("corpus")
        threads: 1
        resources:
            mem_mb=2000,
            runtime=15,
        params:
            cfg=config["demo"],
            meld=MELD_CFG,
        script:
            "../scripts/demo_corpus.py"
