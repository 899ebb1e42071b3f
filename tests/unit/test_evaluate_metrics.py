"""Metrics: equality with pycocoevalcap called directly, maxima, empty predictions, BLEURT."""

from __future__ import annotations

import numpy as np
import pytest

from ecem.evaluate.bootstrap import BootstrapSettings
from ecem.evaluate.metrics import (
    Scorer,
    bleu_statistics,
    corpus_bleu,
    evaluate_run,
    java_environment,
    ptb_tokenize,
)
from tests.unit.evaluate_fixtures import CANDIDATES, REFERENCES, metrics_cfg

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def scored(scorer):
    ids = [f"s{i}" for i in range(len(CANDIDATES))]
    run = scorer.score(ids, CANDIDATES, REFERENCES)
    return run, evaluate_run(scorer, run, BootstrapSettings(200, 1, 0.95))


def _direct_coco(cands, refs):
    """pycocoevalcap exactly as its own COCOEvalCap uses it."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with java_environment():
        tok = PTBTokenizer()
        gts = tok.tokenize({i: [{"caption": r}] for i, r in enumerate(refs)})
        res = tok.tokenize({i: [{"caption": c}] for i, c in enumerate(cands)})
        res = {i: res.get(i, [""]) for i in gts}
        meteor = Meteor()
        out = {
            "bleu4": Bleu(4).compute_score(gts, res, verbose=0)[0][3],
            "meteor": meteor.compute_score(gts, res)[0],
            "rouge_l": float(Rouge().compute_score(gts, res)[0]),
            "cider": float(Cider().compute_score(gts, res)[0]),
        }
        del meteor
    return out


def test_coco_metrics_equal_pycocoevalcap_direct(scored):
    _, results = scored
    direct = _direct_coco(CANDIDATES, REFERENCES)
    for key, value in direct.items():
        assert results[key].status == "ok"
        assert results[key].value == pytest.approx(value, rel=1e-9, abs=1e-12), key
        assert "pycocoevalcap" in results[key].settings and "PTB" in results[key].settings


def test_bleu_statistics_reproduce_pycocoevalcap_corpus_bleu():
    from pycocoevalcap.bleu.bleu import Bleu

    cands = ptb_tokenize(CANDIDATES)
    refs = ptb_tokenize(REFERENCES)
    stats = np.stack([bleu_statistics(c, [r]) for c, r in zip(cands, refs)])
    ours = corpus_bleu(stats[None])[0]
    theirs = Bleu(4).compute_score(
        {i: [r] for i, r in enumerate(refs)}, {i: [c] for i, c in enumerate(cands)}, verbose=0
    )[0][3]
    assert ours == pytest.approx(theirs, rel=1e-12)


def test_identical_candidates_give_each_metrics_maximum(scorer):
    ids = [f"s{i}" for i in range(len(REFERENCES))]
    same = scorer.score(ids, REFERENCES, REFERENCES)
    res = evaluate_run(scorer, same, BootstrapSettings(50, 0, 0.95))
    assert res["bleu4"].value == pytest.approx(1.0, abs=1e-6)
    assert res["rouge_l"].value == pytest.approx(1.0)
    assert res["cider"].value == pytest.approx(10.0, rel=1e-6)  # CIDEr-D is scaled by 10
    assert res["bertscore"].value == pytest.approx(1.0, abs=1e-4)
    assert res["sem_sim"].value == pytest.approx(1.0, abs=1e-4)
    # METEOR's fragmentation penalty keeps an exact match just below 1; still the best any candidate gets
    assert res["meteor"].value > 0.95
    other = scorer.score(ids, CANDIDATES, REFERENCES)
    assert np.all(same.per_sample["meteor"].to_numpy() >= other.per_sample["meteor"].to_numpy())
    assert res["meteor"].value > evaluate_run(scorer, other, BootstrapSettings(5, 0, 0.95))["meteor"].value


def test_empty_prediction_is_scored_and_counted(scored):
    run, results = scored
    per = run.per_sample
    assert per["empty"].tolist() == [c.strip() == "" for c in CANDIDATES]
    empty = per[per["empty"]].iloc[0]
    for key in ("bleu4", "meteor", "rouge_l", "cider", "bertscore"):
        assert empty[key] == 0.0, key
    assert np.isfinite(empty["sem_sim"])
    assert all(r.status == "ok" for k, r in results.items() if k != "bleurt")


def test_bleurt_is_unavailable_without_a_model(scored):
    _, results = scored
    assert results["bleurt"].status == "unavailable"
    assert results["bleurt"].value is None and results["bleurt"].ci_low is None
    assert "no BLEURT model" in results["bleurt"].reason


def test_bleurt_with_a_model_but_no_port_installed_is_unavailable():
    pytest.importorskip("pytest")
    try:
        import bleurt_pytorch  # noqa: F401

        pytest.skip("bleurt-pytorch is installed here")
    except ImportError:
        pass
    with Scorer(metrics_cfg(metrics=["bleurt"], bleurt={"model": "some/bleurt", "batch_size": 2})) as s:
        run = s.score(["a"], ["x y"], ["x y"])
        res = evaluate_run(s, run, BootstrapSettings(10, 0, 0.95))
    assert res["bleurt"].status == "unavailable" and "not installed" in res["bleurt"].reason


def test_ci_contains_point_estimate_for_every_metric(scored):
    _, results = scored
    for key, r in results.items():
        if r.status == "ok":
            assert r.ci_low <= r.value + 1e-12 and r.value - 1e-12 <= r.ci_high, key
            assert "bootstrap" in r.settings


def test_settings_name_models_and_options(scorer):
    s = scorer.settings()
    assert (
        "all-MiniLM-L6-v2" in s["bertscore"] and "layer 6" in s["bertscore"] and "idf false" in s["bertscore"]
    )
    assert "rescaled false" in s["bertscore"]
    assert "all-MiniLM-L6-v2" in s["sem_sim"]
    assert "references" in s["cider"]
