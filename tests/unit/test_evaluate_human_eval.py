"""Human evaluation: blinded export → fill with known ratings → aggregate gives the known means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecem.evaluate.human_eval import (
    CRITERIA,
    aggregate,
    export_sheets,
    krippendorff_alpha_interval,
    write_table5,
)
from tests.unit.evaluate_fixtures import annotations

CFG = {"title": "Rate these", "samples": 2, "seed": 4}


def _predictions():
    ann = annotations()
    words = {"fame": "alpha", "template": "beta", "retrieval": "gamma"}  # texts never name the run
    return {
        run: pd.DataFrame(
            {"sample_id": ann["sample_id"], "prediction": [f"explanation {w} {i}" for i in range(len(ann))]}
        )
        for run, w in words.items()
    }


def test_rating_sheet_round_trip_gives_known_means(tmp_path):
    sheet, html, key = tmp_path / "sheet.csv", tmp_path / "sheet.html", tmp_path / "key.csv"
    n = export_sheets(annotations(), _predictions(), CFG, ["train", "test"], str(sheet), str(html), str(key))
    assert n == 2 * 3
    blank = pd.read_csv(sheet, dtype={"item_id": str})
    keys = pd.read_csv(key)
    # blinded: the sheet never names the run, the key does
    assert "run" not in blank.columns and "sample_id" not in blank.columns
    assert set(keys["run"]) == {"fame", "template", "retrieval"}
    assert blank["item_id"].tolist() == keys["item_id"].tolist()
    # shuffled: items are not grouped run after run
    assert keys["run"].tolist() != sorted(keys["run"].tolist())
    html_text = html.read_text()
    assert all(item in html_text for item in blank["item_id"])
    assert not any(run in html_text for run in ("fame", "template", "retrieval"))

    # two raters fill in known values: rater A gives fame 5/4/3 and others 2/2/2; rater B gives +1 on fluency
    run_of = dict(zip(keys["item_id"], keys["run"]))
    filled = []
    for rater, bump in (("rater_a", 0), ("rater_b", 1)):
        df = blank.copy()
        for i, item in enumerate(df["item_id"]):
            base = (
                {"contextuality": 5, "fluency": 4, "relevance": 3}
                if run_of[item] == "fame"
                else {"contextuality": 2, "fluency": 2, "relevance": 2}
            )
            for c in CRITERIA:
                df.loc[i, c] = base[c] + (bump if c == "fluency" else 0)
        path = tmp_path / f"{rater}.csv"
        df.to_csv(path, index=False)
        filled.append(path)
    means, agree = aggregate(filled, key)
    m = means.set_index("run")
    assert (
        m.loc["fame", "contextuality"] == 5
        and m.loc["fame", "fluency"] == 4.5
        and m.loc["fame", "relevance"] == 3
    )
    assert m.loc["template", "contextuality"] == 2 and m.loc["retrieval", "fluency"] == 2.5
    assert (m["items"] == 2).all() and (m["raters"] == 2).all()
    a = agree.set_index("criterion")
    assert a.loc["contextuality", "krippendorff_alpha_interval"] == pytest.approx(1.0)
    assert a.loc["contextuality", "exact_agreement"] == 1.0 and a.loc["fluency", "exact_agreement"] == 0.0
    out = tmp_path / "t5.md"
    write_table5(means, agree, str(out), str(tmp_path / "t5.csv"), str(tmp_path / "agree.csv"))
    assert "| fame | 2 | 2 | 5.00 ± 0.00 | 4.50 ± 0.58 | 3.00 ± 0.00 |" in out.read_text()


def test_export_is_seeded():
    from ecem.evaluate.human_eval import build_items

    s1, k1 = build_items(annotations(), _predictions(), 3, 9, ["train", "test"])
    s2, k2 = build_items(annotations(), _predictions(), 3, 9, ["train", "test"])
    s3, k3 = build_items(annotations(), _predictions(), 3, 10, ["train", "test"])
    assert k1.equals(k2) and not k1.equals(k3)


def test_krippendorff_alpha_known_value():
    # two raters, interval data: D_o = mean within-unit squared difference, D_e over all pairable values
    ratings = pd.DataFrame([[1, 2], [3, 3], [5, 4], [np.nan, 2]], columns=["a", "b"])
    values = np.array([1, 2, 3, 3, 5, 4], dtype=float)
    n = len(values)
    d_o = (2 * 1 + 0 + 2 * 1) / n
    d_e = ((values[:, None] - values[None, :]) ** 2).sum() / (n * (n - 1))
    assert krippendorff_alpha_interval(ratings) == pytest.approx(1 - d_o / d_e)


def test_ratings_outside_the_scale_are_refused(tmp_path):
    sheet, html, key = tmp_path / "s.csv", tmp_path / "s.html", tmp_path / "k.csv"
    export_sheets(annotations(), _predictions(), CFG, ["test"], str(sheet), str(html), str(key))
    df = pd.read_csv(sheet)
    for c in CRITERIA:
        df[c] = 7
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="outside"):
        aggregate([tmp_path / "bad.csv"], key)


PAYLOADS = ["=1+2", "=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3", "\tx",
            "\r=1", "'=already quoted"]


def test_cells_that_start_a_formula_are_neutralised_and_the_filled_sheet_round_trips(tmp_path):
    """Speakers, utterances and explanations starting with = + - @ tab or CR (OWASP's list) reach
    the CSVs raters open in a spreadsheet program with a leading apostrophe; numbers stay numbers;
    reading back restores every text; a sheet filled in a spreadsheet still aggregates."""
    import csv

    from ecem.csvsafe import FORMULA_START, read_csv

    ann = annotations()
    ann["speaker"] = [PAYLOADS[i % len(PAYLOADS)] for i in range(len(ann))]
    ann["utterance_text"] = [PAYLOADS[(i + 1) % len(PAYLOADS)] for i in range(len(ann))]
    answers = [PAYLOADS[(i + 2) % len(PAYLOADS)] for i in range(len(ann))]
    preds = {"=run": pd.DataFrame({"sample_id": ann["sample_id"], "prediction": answers}),
             "template": _predictions()["template"]}
    sheet, html, key = tmp_path / "sheet.csv", tmp_path / "sheet.html", tmp_path / "key.csv"
    export_sheets(ann, preds, {**CFG, "samples": len(ann)}, ["train", "test"], str(sheet), str(html),
                  str(key))
    for path in (sheet, key):
        with path.open(newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert not [c for c in cells if c.startswith(FORMULA_START)], path
        assert "'=1+2" in cells or path == key
    assert "'=run" in key.read_text()
    texts = read_csv(sheet, dtype={"item_id": str})
    assert set(texts["speaker"]) | set(texts["utterance"]) | set(texts["explanation"]) >= set(PAYLOADS)
    assert set(read_csv(key)["run"]) == {"=run", "template"}
    # a rater fills the ratings in a spreadsheet program: the texts stay as it shows them
    seen = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    for c in CRITERIA:
        seen[c] = 3
    seen.to_csv(tmp_path / "rater.csv", index=False, lineterminator="\r\n")  # as spreadsheets save
    means, _ = aggregate([tmp_path / "rater.csv"], key)
    assert set(means["run"]) == {"=run", "template"} and (means["relevance"] == 3).all()
    out = tmp_path / "t5.csv"
    write_table5(means, _, str(tmp_path / "t5.md"), str(out), str(tmp_path / "agree.csv"))
    assert "'=run" in out.read_text() and list(read_csv(out)["run"]) == ["=run", "template"]


def test_numbers_are_not_formulas_and_every_string_survives_the_round_trip():
    from ecem.csvsafe import neutralise, restore

    for number in ("-0.25", "+3", "-1e-05", " -2 "):
        assert neutralise(number) == number
    for text in [*PAYLOADS, "''=", "'", "plain", "", "'plain"]:
        assert restore(neutralise(text)) == text
    assert neutralise(-0.25) == -0.25 and neutralise(None) is None
