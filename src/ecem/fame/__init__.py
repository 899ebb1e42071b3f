"""FAME-Net: a frozen causal LLM fed projected video tokens (and, for an experiment that hears,
audio tokens), trained to explain emotion causes.

Modules: `prompt` (the one place prompts are built), `examples` (rule fame_examples, torch-free),
`model` (LLM + linear projectors, splicing, generation), `data` (tokenisation, batching),
`inputs` (a run's examples and tokens, and the model built on them), `train` and `checkpoints`
(the training loop, exact resume), `card` (the run card), `trained` (a trained run: generation
and scoring), `generate`, `reliance` (the modality-reliance check), `stage` (rule entry points),
`launch` (training in one process or under `accelerate launch`), `tiny` (offline tiny LLM +
tokenizer), `workflow` (the rules' input functions).
"""
