# Shared by every stage: config validation, input sources and paths.
from pathlib import Path

from ecem import model_refs, sources
from ecem.config import ConfigError, check_config, config_slice, selected_runs
from ecem.meld import MeldLayout
from ecem.modalities import Modalities
from ecem.provenance import code_version
from ecem.resources import gpus, threads
from ecem.tokens import token_array_path

try:
    check_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config")
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None

# Named once, in ecem.sources (what rules may write).
RESULTS = sources.RESULTS_DIR
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
# Every artifact one stage hands to another, named once: rules refer to these names (or to
# rules.<rule>.output), never to a spelled-out path. Files internal to a stage stay in its .smk.
ECEM = f"{RESULTS}/ecem"
ANNOTATIONS = f"{ECEM}/annotations.parquet"
UTTERANCES = f"{ECEM}/utterances.parquet"
SEGMENTS = f"{ECEM}/segments.parquet"
CLIPS = f"{ECEM}/clips.parquet"
DATASET_QUALITY = f"{ECEM}/quality.json"
DATASET_STATISTICS = f"{ECEM}/statistics.json"
RENDER_SHARDS = range(config["dataset"]["render"]["shards"])
RENDER_DIRS = [f"{ECEM}/render/shard-{k}" for k in RENDER_SHARDS]
TRANSCRIPTS = f"{RESULTS}/transcripts.parquet"
VIDEO_TOKENS = f"{RESULTS}/features/clip.parquet"
VIDEO_TOKEN_ARRAY = str(token_array_path(VIDEO_TOKENS))  # what FAME-Net reads
AUDIO_TOKENS = f"{RESULTS}/features/audio.parquet"
AUDIO_TOKEN_ARRAY = str(token_array_path(AUDIO_TOKENS))  # FAME-Net reads it
FACES_TABLE = f"{RESULTS}/features/faces.parquet"
FACE_SUMMARY = f"{RESULTS}/features/face_summary.parquet"
# The runs this invocation makes (config `runs`: a selection of experiments and baselines).
EXPERIMENTS, BASELINES = selected_runs(config)
# The audio stage runs only when an experiment hears audio (experiments.<name>.audio).
USES_AUDIO = any(Modalities.from_experiment(e).audio for e in EXPERIMENTS.values())
STAGE_QUALITY = {  # each stage's data-quality summary, as the report names them
    "dataset": DATASET_QUALITY,
    **{
        s: f"{RESULTS}/quality/{s}.json"
        for s in ("transcribe", "clip_features", "faces", "train")
    },
}
if USES_AUDIO:
    STAGE_QUALITY["audio_features"] = f"{RESULTS}/quality/audio_features.json"
RUNS = f"{RESULTS}/runs"
# Every run, a FAME-Net experiment or a baseline, writes its predictions here; the rules that make
# them name the wildcard for what they make: PREDICTIONS.format(run="{experiment}") (or "{baseline}");
# the same for a FAME-Net run's card and reliance check.
PREDICTIONS = f"{RUNS}/{{run}}/predictions.parquet"
RUN_CARD = f"{RUNS}/{{run}}/run_card.json"
RELIANCE = f"{RUNS}/{{run}}/reliance.parquet"
TABLES = f"{RESULTS}/tables"
REPORT = f"{RESULTS}/report.html"
# Where this run reads its inputs: the user's paths, the demo's, or the download cache
# (ecem.sources). Rules write only under results/ and resources/{demo,models,downloads}/.
MELD_SOURCE = sources.meld_source(config)
MELD_CFG = {**config["meld"], "root": MELD_SOURCE.path}
MELD = MeldLayout.from_config(MELD_CFG)
ECEM_SOURCE = sources.ecem_source(config)


def conda_env(name):
    """The conda env of a group of rules (conda users: --software-deployment-method conda):
    envs/<name>.yaml, one per software stack, so a pin change rebuilds and reruns its rules only.
    """
    return f"{workflow.basedir}/envs/{name}.yaml"
