# Shared by every stage: config validation, paths, and the package-code inputs of rules.
import importlib.util
from pathlib import Path

from ecem.config import ConfigError, validate_config
from ecem.meld import MeldLayout

try:
    validate_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config")
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
MELD = MeldLayout.from_config(config["meld"])


def code(*modules):
    """Source files of package modules, listed as rule inputs so that editing a stage's code
    reruns that stage (Snakemake does not see imports by itself)."""
    paths = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise WorkflowError(f"package module {name!r} not found: is the package installed?")
        paths.append(spec.origin)
    return paths
