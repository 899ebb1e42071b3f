# Public inputs fetched once when the config gives a URL, the demo is off and the user's own path
# is absent. They land in the project-owned cache resources/downloads/ and are read from there;
# each rule exists only while its cache is incomplete, so it never reruns over data (whatever the
# file times). Offline, the job fails with a message saying where to put the file. Downloads run
# where Snakemake runs (cluster nodes often have no internet).
if MELD_SOURCE.download:

    localrules:
        download_meld,

    rule download_meld:
        output:
            csvs=[str(MELD.csv_path(s)) for s in MELD.splits],
            videos=[directory(str(MELD.video_dir(s))) for s in MELD.splits],
        log:
            f"{LOGS}/download_meld.log",
        conda:
            conda_env("dataset")
        threads: 1
        resources:
            mem_mb=2000,
            runtime=240,
        params:
            cfg=config["meld"]["download"],
            root=MELD_SOURCE.path,
        script:
            "../scripts/download_meld.py"


if ECEM_SOURCE.download:

    localrules:
        download_ecem,

    rule download_ecem:
        output:
            ECEM_SOURCE.path,
        log:
            f"{LOGS}/download_ecem.log",
        conda:
            conda_env("dataset")
        threads: 1
        resources:
            mem_mb=500,
            runtime=10,
        params:
            cfg=config["ecem"]["download"],
        script:
            "../scripts/download_ecem.py"
