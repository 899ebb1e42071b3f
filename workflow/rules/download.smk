# Public inputs fetched once when the config gives a URL and the demo corpus is off. Never used by
# the demo or the tests; offline, the job fails with a message saying where to put the file.
if not config["demo"]["enabled"] and config["meld"]["download"]["url"]:

    rule download_meld:
        output:
            csvs=[str(MELD.csv_path(s)) for s in MELD.splits],
            videos=[directory(str(MELD.video_dir(s))) for s in MELD.splits],
        log:
            f"{LOGS}/download_meld.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=240,
        params:
            cfg=config["meld"]["download"],
            root=config["meld"]["root"],
        script:
            "../scripts/download_meld.py"


if not config["demo"]["enabled"] and config["ecem"]["download"]["url"]:

    rule download_ecem:
        output:
            config["ecem"]["annotations"],
        log:
            f"{LOGS}/download_ecem.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=500,
            runtime=10,
        params:
            cfg=config["ecem"]["download"],
        script:
            "../scripts/download_ecem.py"
