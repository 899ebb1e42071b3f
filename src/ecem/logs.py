"""Logging for rule scripts: everything a job says goes to its Snakemake `log:` file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def rule_logging(snakemake: Any) -> Iterator[logging.Logger]:
    """Route logging (and uncaught errors) of a `script:` job to its first log file and stderr.

    Use as `with rule_logging(snakemake) as log: ...` at the top of a workflow script.
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
    except Exception:
        logger.exception("rule %s failed", snakemake.rule)
        raise
    finally:
        for handler in handlers:
            handler.flush()
