"""Tables and report from fixture metrics/predictions: layouts, CIs, embedded figures, absent stages."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser

import pandas as pd
from PIL import Image

from ecem.dataset.statistics import dataset_statistics
from ecem.artifacts import write_json, write_table
from ecem.evaluate.metrics.embedding import BUNDLED_ENCODER
from ecem.evaluate.report import build_report
from ecem.evaluate.report_banner import banner_items
from ecem.evaluate.report_quality import quality_view
from ecem.evaluate.tables import build_tables, display_table, write_tables
from tests.unit.evaluate_fixtures import annotations

MODS = {
    "V": (True, False, False, "meld"),
    "V+T+E": (True, True, True, "meld"),
    "V+T+E_asr": (True, True, True, "asr"),
    "V+T": (True, True, False, "meld"),
}


def _metrics(run: str, base: float, kind: str) -> dict:
    metrics = {}
    for i, key in enumerate(["bleu4", "meteor", "rouge_l", "bertscore", "sem_sim", "cider"]):
        v = base + i / 10
        metrics[key] = {
            "name": key,
            "status": "ok",
            "value": v,
            "ci_low": v - 0.01,
            "ci_high": v + 0.02,
            "settings": f"settings of {key}",
            "reason": None,
        }
    metrics["bleurt"] = {
        "name": "BLEURT",
        "status": "unavailable",
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "settings": "none",
        "reason": "no BLEURT model configured",
    }
    return {
        "run": run,
        "kind": kind,
        "splits": ["test"],
        "n_samples": 2,
        "n_expected": 2,
        "n_missing": 0,
        "n_empty_predictions": 0,
        "metrics": metrics,
    }


def _card(run: str) -> dict:
    v, t, e, src = MODS[run]
    return {
        "config": {"experiment": {"video": v, "text": t, "face": e, "text_source": src}},
        "llm": {"name_or_path": "resources/tiny_llm", "random_weights": True},
    }


def _setup(tmp_path):
    runs = {
        **{r: _metrics(r, 0.1 * (i + 1), "fame") for i, r in enumerate(MODS)},
        "template": _metrics("template", 0.05, "baseline"),
    }
    paths, cards = {}, {}
    for run, data in runs.items():
        paths[run] = tmp_path / "runs" / run / "metrics.json"
        write_json(data, paths[run])
        if run in MODS:
            cards[run] = tmp_path / "runs" / run / "run_card.json"
            write_json(_card(run), cards[run])
    return runs, paths, cards


def test_tables_have_paper_layouts_with_cis(tmp_path):
    runs, _, cards = _setup(tmp_path)
    tables = build_tables(runs, {r: json.loads(p.read_text()) for r, p in cards.items()})
    t2 = tables["table2"][0]
    assert t2["run"].tolist() == list(runs)
    assert t2.loc[t2["run"] == "V", "bleu4_ci_high"].item() == 0.1 + 0.02
    assert "0.1000 [0.0900, 0.1200]" in tables["table2"][1] and "unavailable" in tables["table2"][1]
    t3 = display_table("table3", tables["table3"][0])
    assert t3["modalities"].tolist() == ["V", "V+T", "V+T+E", "V+T+E"]  # paper order, baselines excluded
    assert t3.loc[0, "BLEU4"] == "0.1000 [0.0900, 0.1200]"
    t4 = tables["table4"][0]
    assert set(t4["run"]) == {"V+T", "V+T+E", "V+T+E_asr"}
    assert set(t4["text source"]) == {"MELD text", "WhisperX text"}
    written = write_tables(tables, tmp_path / "tables")
    csv = pd.read_csv(tmp_path / "tables" / "table2.csv")
    assert {"bleu4", "bleu4_ci_low", "bleu4_ci_high", "bleurt_status"} <= set(csv.columns)
    assert len(written) == 6


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.images, self.text = 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables += 1
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def test_report_is_self_contained_and_survives_absent_stages(tmp_path):
    runs, paths, cards = _setup(tmp_path)
    ann = annotations()
    write_table(ann, tmp_path / "annotations.parquet", "dataset", {})
    preds = {}
    for run in runs:
        preds[run] = tmp_path / "runs" / run / "predictions.parquet"
        df = ann[ann["split"] == "test"][["sample_id", "cause"]].rename(columns={"cause": "reference"})
        df["prompt"] = "p"
        df["prediction"] = f"prediction of {run}"
        if run == "V":  # a 10 kB answer: shown cut, the rest one click away
            df["prediction"] = f"prediction of {run} " + "very long " * 1000 + "END"
        write_table(df, preds[run], "generate", {"random_weights": run in MODS})
    quality = tmp_path / "quality.json"
    write_json({"clips": {"ok": 5, "quarantined": 1}}, quality)
    tables = build_tables(runs, {r: json.loads(p.read_text()) for r, p in cards.items()})
    write_tables(tables, tmp_path / "tables")
    out = tmp_path / "report.html"
    write_json(dataset_statistics(ann), tmp_path / "statistics.json")
    build_report(
        annotations=str(tmp_path / "annotations.parquet"),
        statistics=str(tmp_path / "statistics.json"),
        clips=str(tmp_path / "absent_clips.parquet"),
        quality={"dataset": str(quality), "transcribe": str(tmp_path / "quality" / "transcribe.json")},
        metrics={r: str(p) for r, p in paths.items()},
        predictions={r: str(p) for r, p in preds.items()},
        cards={r: str(p) for r, p in cards.items()},
        transcripts=str(tmp_path / "nothing.parquet"),
        face_summary=None,
        model_files={},
        tables={p.stem: str(p) for p in (tmp_path / "tables").glob("*.csv")},
        cfg={"title": "Test report", "gallery_samples": 2, "keyframes": 2, "thumb_width": 64, "seed": 0},
        splits=["test"],
        unrun_baselines={"video_chatgpt": "video_llm: not run"},
        is_demo=True,
        out=str(out),
    )
    page = out.read_text()
    parser = _Collector()
    parser.feed(page)
    text = " ".join(parser.text)
    # figures 3 and 4 embedded as PNG data URIs, nothing loaded from elsewhere
    figs = [i for i in parser.images if i["src"].startswith("data:image/png;base64,")]
    assert len(figs) == len(parser.images) >= 2
    for img in figs:
        Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))).verify()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    # tables: split/emotion stats, quality, Table 2/3/4 with every run
    assert parser.tables >= 6
    for run in runs:
        assert f"prediction of {run}" in page
    assert "0.1000 [0.0900, 0.1200]" in page
    long_text = "prediction of V " + "very long " * 1000 + "END"
    assert page.count('<details class="long">') == 2  # two test samples in the gallery
    assert f"(show all {len(long_text)} characters)" in page and page.count(long_text) == 2
    assert f"<summary>{long_text[:400]}… " in page
    # banner names the random model and the missing metric; absent artifacts are said, not fatal
    assert "resources/tiny_llm" in text and "BLEURT unavailable" in text and "demo corpus" in text
    assert "transcribe.json (stage not run)" in text
    assert "clips.parquet absent" in text
    assert "video_chatgpt" in text


def test_banner_lists_real_stand_ins_and_random_models_apart():
    meta = {"features/clip.parquet": {"model": "resources/models/dinov2-vits14", "random_weights": False,
                                       "model_card": {"model": "DINOv2 ViT-S/14",
                                                      "stand_in_for": "the paper's CLIP ViT-L/14"}},
            "runs/V/run_card.json": {"llm": {"name_or_path": "resources/models/tiny-llama",
                                             "random_weights": True}}}
    items = banner_items(meta, {}, is_demo=False)
    assert [(i["kind"], i["text"]) for i in items] == [
        ("random weights", "resources/models/tiny-llama"),
        ("stand-in model", "DINOv2 ViT-S/14 (real, pretrained) stands in for the paper's CLIP ViT-L/14")]
    assert banner_items({"x": {"model": "openai/clip-vit-large-patch14", "random_weights": False}}, {},
                        is_demo=False) == []


def test_quality_view_reads_counts_records_and_details(tmp_path):
    path = tmp_path / "quality.json"
    write_json({"annotations": {"total": 10, "quarantined": {"neutral": 1, "unmatched": 1},
                                "quarantined_rows": [{"reason": "neutral", "detail": "x"}]},
                "splits": {"test": {"samples": 1, "dialogues": 1}, "train": {"samples": 3, "dialogues": 2}},
                "settings": {"probe": {"silence_dbfs": -60.0}}}, path)
    (stage,) = quality_view({"dataset": str(path)})
    assert stage["facts"] == [("annotations › total", 10)]
    assert stage["counts"] == [{"label": "annotations › quarantined", "counts": [("neutral", 1), ("unmatched", 1)]}]
    assert [r["label"] for r in stage["records"]] == ["splits"]
    assert stage["records"][0]["rows"][1] == {"splits": "train", "samples": 3, "dialogues": 2}
    assert [d["label"] for d in stage["details"]] == ["annotations › quarantined_rows", "settings"]


def test_banner_names_metrics_that_ran_the_bundled_encoder_from_its_card():
    def metrics(bert_settings: str) -> dict:
        return {"V": {"metrics": {
            "bertscore": {"name": "BERTScore", "status": "ok", "settings": bert_settings},
            "sem_sim": {"name": "Sem_Sim", "status": "ok", "settings": "model all-MiniLM-L6-v2 (bundled by x)"},
            "bleu4": {"name": "BLEU4", "status": "ok", "settings": "pycocoevalcap, all-MiniLM-L6-v2"},
            "bleurt": {"name": "BLEURT", "status": "unavailable", "settings": "", "reason": "no model"}}}}

    texts = [i["text"] for i in banner_items({}, metrics("model all-MiniLM-L6-v2 (bundled by x)"), is_demo=False)]
    assert texts == [
        f"BERTScore uses all-MiniLM-L6-v2, a stand-in for the paper's {BUNDLED_ENCODER.stand_in_for['bertscore']}",
        f"Sem_Sim uses all-MiniLM-L6-v2, a stand-in for the paper's {BUNDLED_ENCODER.stand_in_for['sem_sim']}",
        "BLEURT unavailable: no model"]  # a metric the card has no paper model for is no stand-in
    # the paper's own encoder is no stand-in
    texts = [i["text"] for i in banner_items({}, metrics("model roberta-large, layer 17"), is_demo=False)]
    assert not any(t.startswith("BERTScore") for t in texts)


def test_bundled_encoder_card_names_a_stand_in_only_for_its_own_metrics_and_settings():
    assert BUNDLED_ENCODER.stand_in("bertscore", "model all-MiniLM-L6-v2 (bundled)") == "roberta-large L17"
    assert BUNDLED_ENCODER.stand_in("sem_sim", "model all-MiniLM-L6-v2") == "SimCSE roberta-large"
    assert BUNDLED_ENCODER.stand_in("bertscore", "model roberta-large") is None
    assert BUNDLED_ENCODER.stand_in("bleu4", "all-MiniLM-L6-v2") is None
    assert BUNDLED_ENCODER.stand_in("sem_sim", "") is None
