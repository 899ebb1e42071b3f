"""Rule fame_train (one process, or `accelerate launch` on train.num_gpus GPUs)."""

from ecem.fame.launch import launch_train
from ecem.logs import rule_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_logging(sm):
    launch_train(int(sm.params.train["num_gpus"]), experiment=sm.wildcards.experiment,
                 examples_path=sm.input.examples, features_path=(list(sm.input.features) or [None])[0],
                 llm_path=sm.params.fame["llm"], fame_cfg=dict(sm.params.fame),
                 train_cfg=dict(sm.params.train),
                 out_model=sm.output.model, out_card=sm.output.card, ckpt_dir=sm.params.ckpt_dir,
                 threads=sm.threads, audio_path=(list(sm.input.audio) or [None])[0])
