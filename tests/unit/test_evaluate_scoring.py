"""The scoring job: all runs scored together equal each run scored alone, and a run whose inputs
did not change is taken from the cache instead of being scored again."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from ecem.artifacts import read_table, write_table
from ecem.evaluate.bootstrap import BootstrapSettings
from ecem.evaluate.metrics import evaluate_run
from ecem.evaluate.stage import _from_cache, peer_predictions, run_scoring_stage
from tests.unit.evaluate_fixtures import CANDIDATES, REFERENCES, metrics_cfg

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
RUNS = {"a": CANDIDATES, "b": [c.upper() or "nothing" for c in reversed(CANDIDATES)]}


def test_scoring_runs_together_equals_scoring_each_alone(scorer):
    ids = [f"s{i}" for i in range(len(REFERENCES))]
    boot = BootstrapSettings(100, 3, 0.95)
    together = scorer.score_runs({name: (ids, c, REFERENCES) for name, c in RUNS.items()})
    for name, cands in RUNS.items():
        alone = scorer.score(ids, cands, REFERENCES)
        # embeddings of other runs in the batch change float32 padding numerics only (~1e-7)
        pd.testing.assert_frame_equal(together[name].per_sample, alone.per_sample, rtol=1e-5, atol=1e-6)
        assert together[name].per_sample["meteor_stats"].tolist() == alone.per_sample["meteor_stats"].tolist()
        a, b = evaluate_run(scorer, together[name], boot), evaluate_run(scorer, alone, boot)
        for metric in (m for m in a if a[m].status == "ok"):
            assert (a[metric].value, a[metric].ci_low) == pytest.approx((b[metric].value, b[metric].ci_low), rel=1e-5,
                                                                      nan_ok=True), metric
    # CIDEr's document frequencies are each run's own: a run's CIDEr does not depend on the others
    assert np.isfinite(together["a"].per_sample["cider"]).all()


def _predictions(tmp_path, name, cands):
    path = tmp_path / "runs" / name / "predictions.parquet"
    write_table(pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(cands))], "prediction": cands,
                              "reference": REFERENCES}), path, "fame", {"experiment": name})
    return str(path)


def test_unchanged_runs_come_from_the_cache_and_adding_a_run_scores_only_it(tmp_path, caplog):
    ann = tmp_path / "annotations.parquet"
    write_table(pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(REFERENCES))], "split": "test"}),
                ann, "dataset")
    # the cache does not depend on which metrics are scored: lexical ones keep the test short
    cfg = metrics_cfg(metrics=["bleu4", "rouge_l", "cider"], bootstrap={"resamples": 50, "seed": 7, "confidence": 0.95})
    cache = str(tmp_path / "cache")

    def score(names):
        preds = [_predictions(tmp_path, n, RUNS.get(n, CANDIDATES[::-1])) for n in names]
        outs = [str(tmp_path / "out" / n) for n in names]
        run_scoring_stage(names, preds, str(ann), cfg, [o + ".scores.parquet" for o in outs],
                          [o + ".metrics.json" for o in outs], cache, "code-v1")
        return {n: json.loads((tmp_path / "out" / f"{n}.metrics.json").read_text()) for n in names}

    first = score(["a", "b"])
    assert first["a"]["scored_with"] == ["a", "b"] and first["a"]["n_samples"] == len(REFERENCES)
    with caplog.at_level(logging.INFO, logger="ecem.evaluate.stage"):
        second = score(["a", "b", "c"])
    assert second["c"]["scored_with"] == ["c"]  # only the new run was scored
    for name in ("a", "b"):
        assert {k: v for k, v in second[name].items() if k != "predictions"} == \
            {k: v for k, v in first[name].items() if k != "predictions"}
        assert "taken from the cache" in caplog.text
    pd.testing.assert_frame_equal(read_table(tmp_path / "out" / "a.scores.parquet"),
                                  read_table(tmp_path / "cache" / "a.scores.parquet"))
    # the cache entry is tied to what the scores depend on, the scoring code included
    cached = json.loads((tmp_path / "cache" / "a.metrics.json").read_text())
    assert cached["fingerprint"] == first["a"]["fingerprint"]
    assert _from_cache(tmp_path / "cache", "a", "another-fingerprint") is None


def test_a_runs_job_scores_its_waiting_peers_and_their_jobs_only_copy(tmp_path, caplog):
    ann = tmp_path / "annotations.parquet"
    write_table(pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(REFERENCES))], "split": "test"}),
                ann, "dataset")
    cfg = metrics_cfg(metrics=["bleu4", "rouge_l"], bootstrap={"resamples": 50, "seed": 7, "confidence": 0.95})
    preds = {n: _predictions(tmp_path, n, c) for n, c in RUNS.items()}
    cache, out = str(tmp_path / "cache"), tmp_path / "out"

    def job(name):
        run_scoring_stage([name], [preds[name]], str(ann), cfg, [str(out / f"{name}.scores.parquet")],
                          [str(out / f"{name}.metrics.json")], cache, "code-v1", peers=peer_predictions(preds[name]))
        return json.loads((out / f"{name}.metrics.json").read_text())

    assert set(peer_predictions(preds["a"])) == {"a", "b"}
    first = job("a")
    assert first["scored_with"] == ["a", "b"]  # b's predictions were there: scored in the same pass
    with caplog.at_level(logging.INFO, logger="ecem.evaluate.stage"):
        second = job("b")
    assert "b: unchanged since it was scored" in caplog.text and "together in" not in caplog.text
    assert second["scored_with"] == ["a", "b"] and second["n_samples"] == len(REFERENCES)
