# Shared by every stage: config validation, paths, and the package-code inputs of rules.
from pathlib import Path

from ecem.config import ConfigError, validate_config
from ecem.meld import MeldLayout
from ecem.workflow import module_files as code  # code("ecem.x", ...) → rule inputs

try:
    validate_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config")
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
MELD = MeldLayout.from_config(config["meld"])
# One software environment for every rule (conda users: --software-deployment-method conda).
CONDA_ENV = f"{workflow.basedir}/envs/pipeline.yaml"
