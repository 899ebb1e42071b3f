"""FAME-Net: a frozen causal LLM fed projected CLIP video tokens, trained to explain emotion causes.

Modules: `prompt` (the one place prompts are built), `model` (LLM + linear projector, splicing,
generation), `data` (tokenisation, batching), `tiny` (offline tiny LLM + tokenizer), `train`,
`generate`, `stage` (rule entry points and a command line for multi-process launches).
"""
