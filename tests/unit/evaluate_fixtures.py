"""Fixture predictions and configs shared by the evaluate unit tests (no pipeline run needed)."""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd

METRICS_CFG: dict[str, Any] = {
    "splits": ["test"],
    "metrics": ["bleu4", "meteor", "rouge_l", "bertscore", "sem_sim", "bleurt", "cider"],
    "device": "cpu",
    "bootstrap": {"resamples": 300, "seed": 7, "confidence": 0.95},
    "bertscore": {
        "model": None,
        "num_layers": 6,
        "idf": False,
        "rescale_with_baseline": False,
        "baseline_path": None,
        "batch_size": 16,
    },
    "sem_sim": {"model": None, "pooling": "model", "batch_size": 16},
    "bleurt": {"model": None, "batch_size": 8},
}

REFERENCES = [
    "Ross is surprised because Rachel says she is pregnant.",
    "Joey is angry because Chandler ate his last sandwich!",
    "Monica feels happy since Chandler finally proposed to her.",
    "Phoebe is sad because her grandmother's cat ran away.",
    "Rachel is disgusted by the smell of the old cheese in the fridge.",
    "Chandler is scared because the duck is loose in the apartment.",
]
CANDIDATES = [
    "Ross is surprised since Rachel is pregnant.",
    "",
    "Monica is happy because Chandler proposed.",
    "Phoebe feels sad, her cat is gone.",
    "Rachel hates the cheese smell.",
    "Chandler is afraid of the duck.",
]


def metrics_cfg(**overrides: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(METRICS_CFG)
    cfg.update(overrides)
    return cfg


def annotations() -> pd.DataFrame:
    """A tiny ECEM-like annotation table: 3 train dialogues, 1 test dialogue."""
    rows = [
        (
            "train/dia1_utt1",
            "train",
            1,
            "Joey",
            "joy",
            "Dinner is ready, finally!",
            "Joey is happy because Monica says that dinner is ready.",
        ),
        (
            "train/dia1_utt2",
            "train",
            1,
            "Monica",
            "anger",
            "Who ate all the cookies?",
            "Monica is angry because Joey ate the cookies she baked.",
        ),
        (
            "train/dia2_utt1",
            "train",
            2,
            "Rachel",
            "fear",
            "Someone is knocking on the door!",
            "Rachel is scared because a stranger knocks at night.",
        ),
        (
            "train/dia3_utt4",
            "train",
            3,
            "Ross",
            "surprise",
            "You got the part in the play?",
            "Ross is surprised because Joey got the lead role.",
        ),
        (
            "test/dia0_utt2",
            "test",
            0,
            "Phoebe",
            "surprise",
            "No way, you got the part in the play?",
            "Phoebe is surprised because Joey got the lead in the play.",
        ),
        (
            "test/dia0_utt3",
            "test",
            0,
            "Joey",
            "joy",
            "Dinner is finally ready!",
            "Joey is happy because dinner is ready at last.",
        ),
    ]
    df = pd.DataFrame(
        rows, columns=["sample_id", "split", "dialogue_id", "speaker", "emotion", "utterance_text", "cause"]
    )
    df["meld_split"] = df["sample_id"].str.split("/").str[0]
    df["utterance_id"] = df["sample_id"].str.extract(r"utt(\d+)")[0].astype(int)
    return df
