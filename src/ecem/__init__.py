"""ECEM / FAME-Net pipeline: the importable library behind the Snakemake workflow.

Rules in `workflow/rules` are thin; every piece of logic lives in a module of this package,
named for what it does, so it can be unit-tested and reused outside Snakemake.
"""

__version__ = "0.1.0"
