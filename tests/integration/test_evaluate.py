"""The evaluate stage on the demo run: metrics with CIs per run, tables, report, rating sheets."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from ecem.artifacts import read_table
from tests.helpers import REPO, planned_jobs, run_snakemake

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture(scope="module")
def runs(config) -> list[str]:
    baselines = [b for b, c in config["baselines"].items() if c["kind"] != "video_llm"]
    return list(config.get("experiments", {})) + baselines


def test_every_run_has_every_metric_with_settings_and_ci(demo_run: Path, runs, config):
    ann = read_table(demo_run / "results/ecem/annotations.parquet")
    expected = set(ann.loc[ann["split"].isin(config["evaluate"]["splits"]), "sample_id"])
    for run in runs:
        data = json.loads((demo_run / f"results/runs/{run}/metrics.json").read_text())
        preds = read_table(demo_run / f"results/runs/{run}/predictions.parquet")
        scored = set(preds["sample_id"]) & expected
        assert data["n_samples"] == len(scored) > 0
        assert data["n_missing"] == len(expected) - len(scored)
        assert data["n_empty_predictions"] == int(
            (
                preds.set_index("sample_id").loc[sorted(scored), "prediction"].fillna("").str.strip() == ""
            ).sum()
        )
        m = data["metrics"]
        assert set(m) == set(config["evaluate"]["metrics"])
        assert m["bleurt"]["status"] == "unavailable" and m["bleurt"]["value"] is None
        for key, entry in m.items():
            assert entry["settings"], key
            if key != "bleurt":
                assert entry["status"] == "ok", (run, key)
                assert entry["ci_low"] - 1e-9 <= entry["value"] <= entry["ci_high"] + 1e-9, (run, key)
        assert "all-MiniLM-L6-v2" in m["bertscore"]["settings"]


def test_baselines_predict_every_evaluated_sample(demo_run: Path, config):
    ann = read_table(demo_run / "results/ecem/annotations.parquet")
    expected = sorted(ann.loc[ann["split"].isin(config["evaluate"]["splits"]), "sample_id"])
    train_causes = set(ann.loc[ann["split"] == "train", "cause"])
    for name in ("template", "retrieval"):
        preds = read_table(demo_run / f"results/runs/{name}/predictions.parquet")
        assert sorted(preds["sample_id"]) == expected
        assert (preds["prediction"].str.len() > 0).all()
    retr = read_table(demo_run / "results/runs/retrieval/predictions.parquet")
    src = ann.set_index("sample_id")
    for row in retr.itertuples():
        s = src.loc[row.retrieved_from]
        assert s["split"] == "train" and s["cause"] in train_causes
        assert (s["meld_split"], s["dialogue_id"]) != (
            src.loc[row.sample_id, "meld_split"],
            src.loc[row.sample_id, "dialogue_id"],
        )


def test_tables_list_every_run(demo_run: Path, runs, config):
    t2 = pd.read_csv(demo_run / "results/tables/table2.csv")
    assert t2["run"].tolist() == runs
    md = (demo_run / "results/tables/table2.md").read_text()
    assert all(f"| {r} |" in md for r in runs)
    paired = pd.read_csv(demo_run / "results/tables/paired.csv")
    ref = config["evaluate"]["paired_reference"]
    assert set(paired["run"]) == set(runs) - {ref} and set(paired["reference"]) == {ref}
    for name in ("table3", "table4"):
        assert (demo_run / f"results/tables/{name}.md").read_text().startswith("## Table")


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.images, self.headers = 0, [], []
        self._h = False

    def handle_starttag(self, tag, attrs):
        self.tables += tag == "table"
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self._h = tag in ("h2", "h3")

    def handle_data(self, data):
        if self._h:
            self.headers.append(data.strip())
            self._h = False


def test_report_has_tables_embedded_figures_and_gallery(demo_run: Path, runs):
    page = (demo_run / "results/report.html").read_text()
    p = _Collector()
    p.feed(page)
    assert p.images and all(src.startswith("data:image/png;base64,") for src in p.images)
    sizes = [Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).size for s in p.images]
    assert len(sizes) >= 2 + 4  # Figures 3 and 4, plus keyframes of at least one gallery sample
    assert any(h.startswith("Table 2: all runs") for h in p.headers)  # the titles of tables/*.md
    assert "Data quality by stage" in " ".join(p.headers)
    assert p.tables >= 5
    for run in runs:
        assert f">{run}<" in page
    assert "These are not paper results" in page  # the demo always has stand-ins (MiniLM, no BLEURT)
    # the banner names the real stand-ins for the paper's models, and nothing random is left
    assert "SmolLM2-135M-Instruct (real, pretrained) stands in for the paper&#39;s LLaVA-7B" in page
    assert "DINOv2 ViT-S/14" in page and "random weights</b>" not in page
    ann = read_table(demo_run / "results/ecem/annotations.parquet")
    assert sum(sid in page for sid in ann.loc[ann["split"] == "test", "sample_id"]) >= 4  # gallery


def test_rating_sheet_is_blinded(demo_run: Path, runs):
    sheet = pd.read_csv(demo_run / "results/human_eval/sheet.csv")
    key = pd.read_csv(demo_run / "results/human_eval/key.csv")
    assert "run" not in sheet.columns and set(key["run"]) <= set(runs)
    assert sheet["item_id"].tolist() == key["item_id"].tolist()
    html = (demo_run / "results/human_eval/sheet.html").read_text()
    assert all(i in html for i in sheet["item_id"])


def _planned_jobs(demo_run: Path, *args: str) -> set[str]:
    return set(planned_jobs(demo_run, *args)) - {"all"}


def test_editing_report_config_reruns_only_the_report(demo_run: Path, tmp_path: Path):
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump({"evaluate": {"report": {"title": "Edited title"}}}))
    before = _planned_jobs(demo_run)  # normally nothing; compared so unrelated reruns do not count
    after = _planned_jobs(demo_run, "--configfile", str(edited))
    assert "evaluate_report" in after and after - before <= {"evaluate_report"}


def test_snakemakes_own_report_collects_the_marked_outputs(demo_run: Path, tmp_path: Path):
    out = tmp_path / "report.zip"
    run_snakemake(demo_run, "--report", str(out))
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        index = zf.read(next(n for n in names if n.endswith("report/report.html"))).decode()
    for category in ("Metrics", "Data quality", "Report", "Human evaluation"):
        assert category in index, category
    assert any(n.endswith("/report.html") and "/data/raw/" in n for n in names)  # our report, embedded
    assert any(n.endswith("table2.csv") for n in names)


def test_a_runs_metrics_need_its_own_predictions_only(demo_run: Path):
    # every job one baseline's metrics need, from scratch: no other run, no clip, feature or FAME job
    jobs = _planned_jobs(demo_run, "results/runs/template/metrics.json", "--forceall")
    assert jobs == {"demo_corpus", "resolve_annotations", "split_samples", "evaluate_baseline", "evaluate_metrics"}
    fame = planned_jobs(demo_run, "results/runs/V/metrics.json", "--forceall")
    assert fame["evaluate_metrics"] == fame["fame_train"] == 1 and "evaluate_baseline" not in fame


def test_the_runs_selector_plans_only_the_chosen_runs(demo_run: Path):
    jobs = planned_jobs(demo_run, "--forceall", "--config", "runs=[V,template]")
    assert jobs["fame_train"] == jobs["fame_generate"] == 1
    assert jobs["evaluate_baseline"] == 1 and jobs["evaluate_metrics"] == 2
    assert "audio_features_shard" not in jobs  # no chosen experiment hears audio


def test_the_reliance_table_has_every_fame_run_and_input(demo_run: Path, config):
    table = pd.read_csv(demo_run / "results/tables/reliance.csv")
    experiments = config["experiments"]
    assert table["run"].drop_duplicates().tolist() == list(experiments)
    assert len(table) == 5 * len(experiments)
    for row in table.itertuples():
        exp = experiments[row.run]
        uses = {"video": exp["video"], "audio": exp.get("audio", False), "face": exp["face"], "text": exp["text"],
                "context": exp["text"] and exp["context_turns"] > 0}[row.input]
        assert (row.status == "not used") == (not uses), row
        if row.status == "ok":
            assert row.n > 0 and row.ci_low <= row.delta <= row.ci_high and row.reading
            assert row.delta == pytest.approx(row.loss_permuted - row.loss_true)
    md = (demo_run / "results/tables/reliance.md").read_text()
    assert md.startswith("## Modality reliance") and "not used" in md
    page = (demo_run / "results/report.html").read_text()
    assert "Modality reliance" in page and "V+T+E+A" in page
