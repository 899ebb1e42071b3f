"""Logging for rule scripts: everything a job says goes to its Snakemake `log:` file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ecem.faults import EnvironmentFault, environment_cause

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # rule jobs and the processes they launch


@contextlib.contextmanager
def rule_logging(snakemake: Any) -> Iterator[logging.Logger]:
    """Route logging (and uncaught errors) of a `script:` job to its first log file and stderr.

    Use as `with rule_logging(snakemake) as log: ...` at the top of a workflow script. A fault of
    the machine (:class:`ecem.faults.EnvironmentFault`, or an OSError / MemoryError it recognises)
    is logged as one line naming the cause and the path, without a traceback, and the job exits
    with status 1: the rerun after the fix redoes it (Snakemake removes a failed job's outputs).
    Any other error is logged with its traceback and re-raised.
    """
    log_path = Path(str(snakemake.log[0]))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [
        logging.FileHandler(log_path, mode="w"),
        logging.StreamHandler(sys.stderr),
    ]
    logging.basicConfig(level=logging.INFO, format=FORMAT, handlers=handlers, force=True)
    logger = logging.getLogger(f"ecem.rule.{snakemake.rule}")
    try:
        yield logger
    except (EnvironmentFault, OSError, MemoryError) as exc:
        cause = environment_cause(exc)
        if cause is None:
            logger.exception("rule %s failed", snakemake.rule)
            raise
        fault = exc if isinstance(exc, EnvironmentFault) else EnvironmentFault(
            cause, getattr(exc, "filename", None), f"{type(exc).__name__}: {exc}")
        logger.error("rule %s failed, a fault of the machine (not of the data; rerun once it is "
                     "fixed): %s", snakemake.rule, fault)
        raise SystemExit(1) from None
    except Exception:
        logger.exception("rule %s failed", snakemake.rule)
        raise
    finally:
        for handler in handlers:
            handler.flush()
