"""BERTScore and Sem_Sim from one shared encoder pass equal the libraries' own results."""

from __future__ import annotations

import numpy as np
import pytest

from ecem.evaluate.metrics.base import Pairs
from ecem.evaluate.metrics.embedding import BertScore, Encoders, SemSim, bundled_minilm_path
from tests.unit.evaluate_fixtures import CANDIDATES, REFERENCES, metrics_cfg

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# a candidate longer than sentence-transformers' 256-token window (Sem_Sim truncates it there,
# BERTScore at the model's 512), an empty one, and sentences repeated across runs
LONG = " ".join(["Monica is worried because the dinner party keeps growing"] * 35)
CANDS = [*CANDIDATES, LONG, REFERENCES[0]]
REFS = [*REFERENCES, REFERENCES[1], REFERENCES[0]]


@pytest.fixture(scope="module")
def shared():
    cfg = metrics_cfg()
    encoders = Encoders("cpu")
    pairs = Pairs(CANDS, REFS, {"a": slice(0, 4), "b": slice(4, len(CANDS))}, tokenize=lambda t: t)
    bert = BertScore(cfg["bertscore"], encoders).score(pairs)["bertscore"]
    sem = SemSim(cfg["sem_sim"], encoders).score(pairs)["sem_sim"]
    return bert, sem, encoders


def test_one_encoder_serves_both_metrics_when_they_name_one_model(shared):
    *_, encoders = shared
    assert len(encoders._encoders) == 1


def test_bertscore_equals_bert_score_library(shared):
    from bert_score import BERTScorer

    bert, *_ = shared
    scorer = BERTScorer(model_type=str(bundled_minilm_path()), num_layers=6, lang="en", idf=False, device="cpu")
    keep = [i for i, c in enumerate(CANDS) if c.strip()]  # the library cannot score an empty string
    _, _, f1 = scorer.score([CANDS[i] for i in keep], [REFS[i] for i in keep])
    np.testing.assert_allclose(bert[keep], f1.numpy(), rtol=0, atol=1e-6)
    assert bert[CANDS.index("")] == 0.0 and bert[-1] == pytest.approx(1.0, abs=1e-6)


def test_sem_sim_equals_sentence_transformers(shared):
    from sentence_transformers import SentenceTransformer

    _, sem, _ = shared
    model = SentenceTransformer(str(bundled_minilm_path()), device="cpu")
    emb = model.encode(CANDS + REFS, convert_to_numpy=True, normalize_embeddings=True)
    expected = np.sum(emb[: len(CANDS)] * emb[len(CANDS):], axis=1)
    np.testing.assert_allclose(sem, expected, rtol=0, atol=1e-6)
