# The offline demo corpus: MELD.Raw layout + ECEM annotations, generated (never downloaded).
if config["demo"]["enabled"]:

    rule demo_corpus:
        input:
            code("ecem.corpus.build", "ecem.corpus.scene", "ecem.corpus.speech"),
        output:
            csvs=[str(MELD.csv_path(s)) for s in MELD.splits],
            videos=[directory(str(MELD.video_dir(s))) for s in MELD.splits],
            annotations=config["ecem"]["annotations"],
            truth=config["demo"]["truth"],
        log:
            f"{LOGS}/demo_corpus.log",
        benchmark:
            f"{BENCHMARKS}/demo_corpus.tsv"
        conda:
            CONDA_ENV
        threads: 2
        resources:
            mem_mb=2000,
            runtime=15,
        params:
            cfg=config["demo"],
            meld=config["meld"],
        script:
            "../scripts/demo_corpus.py"
