"""The shared text normalisation."""

from ecem.text import normalize_text, text_similarity


def test_normalize_text_folds_quotes_case_punctuation_and_mojibake():
    assert normalize_text("I DON\u2019T   know…  Okay?!") == "i dont know okay"
    assert normalize_text("I donâ€™t know") == normalize_text("i don't know")
    assert normalize_text("") == ""


def test_text_similarity_bounds():
    assert text_similarity("Yeah, sure!", "yeah sure") == 1.0
    assert text_similarity("", "") == 1.0
    assert text_similarity("We were on a break!", "Great, now we can order pizza") < 0.5
