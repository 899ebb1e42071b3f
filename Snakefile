# ECEM / FAME-Net: rebuild ECEM from MELD, extract features, train FAME-Net, score explanations.
# Thin on purpose: stages live in workflow/rules/*.smk, logic in the `ecem` package (src/).
from snakemake.utils import min_version

min_version("9.0")


configfile: f"{workflow.basedir}/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/transcribe.smk"
include: "workflow/rules/features_clip.smk"
include: "workflow/rules/features_faces.smk"
include: "workflow/rules/features_audio.smk"
include: "workflow/rules/fame.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/code_version.smk"
include: "workflow/rules/safety.smk"


rule all:
    default_target: True
    input:
        DATASET_OUTPUTS,
        TRANSCRIBE_OUTPUTS,
        VIDEO_OUTPUTS,
        FACES_OUTPUTS,
        AUDIO_OUTPUTS,
        FAME_OUTPUTS,
        EVALUATE_OUTPUTS,
