"""The modality-reliance machinery: derangements, exactly one input swapped, loss bookkeeping."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from ecem.evaluate.bootstrap import BootstrapSettings
from ecem.evaluate.reliance import input_rows, reliance_frame
from ecem.fame.data import collate
from ecem.fame.generate import score_answers
from ecem.fame.prompt import EXAMPLE_COLUMNS, build_prompt
from ecem.fame.reliance import (
    TRUE,
    SwappedTokens,
    derangement,
    derangements,
    inputs_used,
    plan,
    reliance_table,
    swapped_examples,
)
from ecem.modalities import Modalities
from tests.unit import fame_synthetic as syn

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPT_CFG = {"instruction": "Explain why the emotion of this statement is {emotion}.",
              "utterance": "<{speaker}: {text}>", "context": "Previous turns: {turns}", "turn": "{speaker}: {text}",
              "video_placeholder": syn.PLACEHOLDER, "audio_placeholder": "<audio>",
              "face": "The speaker's facial expression shows {face_emotion}.", "face_unknown": "no visible face"}
ALL = Modalities(video=True, text=True, face=True, context_turns=2, audio=True)


def examples_frame(modalities: Modalities, n: int = 6) -> pd.DataFrame:
    """n examples whose prompt fields all differ between samples (one has no face, two no audio)."""
    rows = []
    for i in range(n):
        sample = {"emotion": syn.EMOTIONS[i], "speaker": ["Ross", "Rachel", "Joey"][i % 3],
                  "text": f"line number {i} of the dialogue", "context": [("Monica", f"turn {i}a"), ("Joey", f"turn {i}b")],
                  "face_emotion": None if i == 3 else ["joy", "anger", "fear", "sadness", "joy", "surprise"][i],
                  "has_audio": i not in (1, 4)}
        rows.append({"sample_id": f"s{i}", "split": "test", "emotion": sample["emotion"],
                     "speaker": sample["speaker"], "prompt": build_prompt(sample, modalities, PROMPT_CFG),
                     "reference": syn.CAUSES[i], "face_emotion": sample["face_emotion"], "text": sample["text"],
                     "context": json.dumps(sample["context"]), "has_audio": sample["has_audio"]})
    return pd.DataFrame(rows, columns=EXAMPLE_COLUMNS)


def test_derangements_have_no_fixed_point_cover_all_and_are_seeded():
    rng = np.random.default_rng(0)
    for n in range(2, 9):
        for _ in range(20):
            perm = derangement(n, rng)
            assert sorted(perm) == list(range(n)) and not np.any(perm == np.arange(n))
    # n = 4 has 9 derangements: a uniform sampler meets every one of them, about equally often
    seen: dict[tuple, int] = {}
    for _ in range(1800):
        key = tuple(derangement(4, rng))
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 9 and min(seen.values()) > 120
    first = [p.tolist() for p in derangements(10, 3, seed=5, input_name="video")]
    assert first == [p.tolist() for p in derangements(10, 3, seed=5, input_name="video")]
    assert first != [p.tolist() for p in derangements(10, 3, seed=5, input_name="face")]
    assert first != [p.tolist() for p in derangements(10, 3, seed=6, input_name="video")]
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1, rng)


def test_inputs_used_follow_the_experiment():
    assert inputs_used(Modalities(video=True, text=False, face=False)) == ["video"]
    assert inputs_used(Modalities(video=True, text=True, face=True)) == ["video", "face", "text"]
    assert inputs_used(ALL) == ["video", "audio", "face", "text", "context"]


@pytest.mark.parametrize("name, field", [("face", "face_emotion"), ("text", "text"), ("context", "context")])
def test_a_prompt_input_swaps_exactly_its_field(name, field):
    ex = examples_frame(ALL)
    partner = {f"s{i}": f"s{(i + 1) % len(ex)}" for i in range(len(ex))}
    swapped, changed = swapped_examples(ex, name, partner, ALL, PROMPT_CFG)
    by_id = ex.set_index("sample_id")
    for row, did_change in zip(swapped.itertuples(), changed, strict=True):
        own = by_id.loc[row.sample_id]
        source = by_id.loc[partner[row.sample_id]]
        assert did_change == (own[field] != source[field] and not (pd.isna(own[field]) and pd.isna(source[field])))
        # the new prompt is the one the prompt builder makes with only this field taken from the partner
        rebuilt = examples_frame(ALL).set_index("sample_id")
        rebuilt.loc[row.sample_id, field] = source[field]
        expected = swapped_examples(rebuilt.reset_index(), name, {s: s for s in partner}, ALL, PROMPT_CFG)[0]
        assert row.prompt == expected.set_index("sample_id").loc[row.sample_id, "prompt"]
        # everything else in the prompt is the sample's own: the speaker stays when the text moves
        assert f"<{own['speaker']}:" in row.prompt and f"emotion of this statement is {own['emotion']}" in row.prompt
    assert any(changed)


def test_audio_is_permuted_among_the_samples_that_have_it_only():
    ex = examples_frame(ALL)
    steps = plan(ex, ALL, count=2, seed=0)
    audio = [partner for name, _, partner in steps if name == "audio"]
    with_audio = set(ex.loc[ex["has_audio"], "sample_id"])
    assert len(audio) == 2 and all(set(p) == with_audio == set(p.values()) for p in audio)
    assert all(s != t for p in audio for s, t in p.items())
    video = [partner for name, _, partner in steps if name == "video"]
    assert all(set(p) == set(ex["sample_id"]) for p in video)
    assert [name for name, _, _ in steps] == [n for n in inputs_used(ALL) for _ in range(2)]


@pytest.fixture(scope="module")
def model_tok(llm_dir):
    return syn.load_model(llm_dir)


def test_swapped_video_changes_only_the_video_rows_of_a_batch(model_tok):
    model, tok = model_tok
    vids = syn.videos()
    ex = [syn.enc(tok, model.placeholder_id, i) for i in range(4)]
    partner = {"s0": "s2", "s1": "s3", "s2": "s0", "s3": "s1"}
    own = collate(ex, vids, tok.pad_token_id)
    moved = collate(ex, SwappedTokens(vids, partner), tok.pad_token_id)
    for key in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(own[key], moved[key])
    n = syn.N_VIDEO
    for i, e in enumerate(ex):
        assert torch.equal(moved["video"][i * n:(i + 1) * n], torch.from_numpy(vids[partner[e.sample_id]].astype(np.float32)))


def test_answer_loss_is_the_llms_own_loss_per_sample_and_in_total(model_tok):
    model, tok = model_tok
    vids = syn.videos()
    ex = [syn.enc(tok, model.placeholder_id, i, text=syn.prompt(i) + " more" * i) for i in range(4)]
    batch = collate(ex, vids, tok.pad_token_id)
    with torch.no_grad():
        out = model(**batch)
        embeds = model.splice(batch["input_ids"], batch["video"])
        reference = model.llm(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"])
    torch.testing.assert_close(out.loss, reference.loss, rtol=1e-6, atol=1e-6)
    assert torch.equal(out.n_tokens, (batch["labels"][:, 1:] != -100).sum(1))
    # one sample alone gives its own row of the batch (padding never enters the loss)
    nll, n_tok = score_answers(model, tok, ex, vids, 4, torch.device("cpu"))
    for i, e in enumerate(ex):
        alone = collate([e], vids, tok.pad_token_id)
        with torch.no_grad():
            single = model(**alone)
        assert nll[i] == pytest.approx(float(single.nll[0]), rel=1e-5) and n_tok[i] == int(single.n_tokens[0])


def test_reliance_rows_and_deltas_add_up(model_tok):
    model, tok = model_tok
    mods = Modalities(video=True, text=True, face=True)
    ex = examples_frame(mods)
    from ecem.fame.data import encode_table

    def score(frame, video_source, audio_source):
        encoded = encode_table(frame, tok, {**PROMPT_CFG, "style": "plain", "user": "USER:", "assistant": "ASSISTANT:"},
                               model.placeholder_id, syn.videos(), 256, True)
        return score_answers(model, tok, encoded, SwappedTokens(syn.videos(), video_source), 4, torch.device("cpu"))

    table = reliance_table(score, ex, mods, PROMPT_CFG, {"permutations": 2, "seed": 0})
    own = table[table["permutation"] == TRUE]
    assert sorted(own["sample_id"]) == sorted(ex["sample_id"]) and (own["input"] == "none").all()
    for name in inputs_used(mods):
        rows = table[table["input"] == name]
        assert len(rows) == 2 * len(ex) and set(rows["permutation"]) == {0, 1}
        assert (rows["source_sample_id"] != rows["sample_id"]).all()
    assert (table["nll"] > 0).all() and (table["n_tokens"] > 0).all()
    # the video rows see another sample's tokens: with a random projector the loss moves
    video = table[table["input"] == "video"].groupby("sample_id")["nll"].mean()
    assert not np.allclose(video.sort_index().to_numpy(), own.set_index("sample_id")["nll"].sort_index().to_numpy())

    boot = BootstrapSettings(200, 0, 0.95)
    rows = {r["input"]: r for r in input_rows("V+T+E", table, inputs_used(mods), boot)}
    assert rows["audio"]["status"] == rows["context"]["status"] == "not used" and "delta" not in rows["audio"]
    for name in inputs_used(mods):
        perm = table[table["input"] == name].groupby("sample_id")["nll"].mean().sort_index()
        true = own.set_index("sample_id")["nll"].sort_index()
        assert rows[name]["delta"] == pytest.approx(float((perm - true).mean()))
        assert rows[name]["ci_low"] <= rows[name]["delta"] <= rows[name]["ci_high"]
        assert rows[name]["n"] == len(ex) and rows[name]["permutations"] == 2
    frame = reliance_frame({"V+T+E": table}, {"V+T+E": inputs_used(mods)}, boot)
    assert list(frame["input"]) == ["video", "audio", "face", "text", "context"]
    assert list(itertools.compress(frame["status"], frame["input"].isin(["video", "face", "text"]))) == ["ok"] * 3
