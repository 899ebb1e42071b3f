"""FAME-Net model: splicing, loss mask, frozen LLM, projector init, batched generation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from ecem.fame.data import IGNORE, PromptTooLong, collate, encode
from ecem.fame.generate import generate
from ecem.fame.card import over_length
from ecem.fame.data import encode_table
from ecem.model_refs import is_random_model
from ecem.fame.train import train
from tests.unit import fame_synthetic as syn


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def model_tok(llm_dir):
    return syn.load_model(llm_dir)


def test_tiny_llm_round_trips_through_from_pretrained(llm_dir, model_tok):
    model, tok = model_tok
    assert type(model.llm).__name__ == "LlamaForCausalLM"
    assert is_random_model(str(llm_dir))
    ids = tok("Ross is surprised because the lasagna has meat.", add_special_tokens=True)["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "Ross is surprised because the lasagna has meat."
    assert len(tok.encode(syn.PLACEHOLDER, add_special_tokens=False)) == 1


def test_splice_puts_exactly_the_projected_tokens_at_the_placeholders(model_tok):
    model, tok = model_tok
    vids = syn.videos()
    # two prompts of different lengths, so the placeholders sit at different offsets (right padding)
    a = syn.enc(tok, model.placeholder_id, 0)
    b = syn.enc(tok, model.placeholder_id, 3, text="a much longer instruction before the clip "
                + syn.prompt(3))
    batch = collate([a, b], vids, tok.pad_token_id)
    with torch.no_grad():
        embeds = model.splice(batch["input_ids"], batch["video"])
        table = model.llm.get_input_embeddings().weight
        for row, sid in enumerate(["s0", "s3"]):
            ids = batch["input_ids"][row]
            slots = (ids == model.placeholder_id).nonzero().flatten()
            assert len(slots) == syn.N_VIDEO and torch.all(slots.diff() == 1)
            expected = model.projector(torch.from_numpy(vids[sid].astype(np.float32)))
            torch.testing.assert_close(embeds[row, slots], expected)
            others = (ids != model.placeholder_id).nonzero().flatten()
            torch.testing.assert_close(embeds[row, others], table[ids[others]])
    with pytest.raises(ValueError, match="placeholder positions"):
        model.splice(batch["input_ids"], batch["video"][:-1])


def test_loss_mask_covers_only_the_answer_tokens(model_tok):
    model, tok = model_tok
    e = syn.enc(tok, model.placeholder_id, 1)
    prompt_len = len(syn.PLAIN.prompt_ids(tok, syn.prompt(1))) - 1 + syn.N_VIDEO
    assert e.labels[:prompt_len] == [IGNORE] * prompt_len
    answer = e.labels[prompt_len:]
    assert IGNORE not in answer and answer[-1] == tok.eos_token_id
    assert answer == e.input_ids[prompt_len:]
    assert tok.decode(answer, skip_special_tokens=True).strip() == syn.CAUSES[1]
    # padding stays out of the loss too
    short = encode(tok, "s2", syn.prompt(2), "Yes.", syn.PLAIN, syn.PLACEHOLDER, model.placeholder_id, syn.N_VIDEO, 256)
    batch = collate([e, short], syn.videos(), tok.pad_token_id)
    n_yes = len(tok(" Yes.", add_special_tokens=False)["input_ids"]) + 1  # + EOS
    assert int((batch["labels"][1] != IGNORE).sum()) == n_yes
    # an over-long answer is cut to max_length, the prompt never
    cut = encode(tok, "s1", syn.prompt(1), syn.CAUSES[1], syn.PLAIN, syn.PLACEHOLDER, model.placeholder_id, syn.N_VIDEO,
                 prompt_len + 3)
    assert len(cut.input_ids) == prompt_len + 3 and cut.labels[:prompt_len] == [IGNORE] * prompt_len
    assert e.answer_cut == 0 and cut.answer_cut == len(answer) - 3
    with pytest.raises(PromptTooLong, match="s1: prompt is .*max_length"):
        encode(tok, "s1", syn.prompt(1), "x", syn.PLAIN, syn.PLACEHOLDER, model.placeholder_id, syn.N_VIDEO, prompt_len)


def test_what_max_length_cuts_is_counted_per_split_and_named(model_tok):
    """A long cause is cut and counted; a sample whose prompt alone is too long is left out of
    training, named, and the other samples still train."""
    model, tok = model_tok
    long_cause = " ".join(["Phoebe is angry because the lasagna has meat."] * 12)
    table = pd.DataFrame({"sample_id": ["s0", "s1", "s2"],
                          "prompt": [syn.prompt(0), syn.prompt(1), "the clip " * 80 + syn.prompt(2)],
                          "reference": [syn.CAUSES[0], long_cause, syn.CAUSES[2]]})
    prompt_cfg = {"style": "plain", "video_placeholder": syn.PLACEHOLDER, "audio_placeholder": "<audio>"}
    with pytest.raises(PromptTooLong, match="s2"):
        encode_table(table, tok, prompt_cfg, model.placeholder_id, syn.videos(), 64, True)
    too_long: list[str] = []
    kept = encode_table(table, tok, prompt_cfg, model.placeholder_id, syn.videos(), 64, True, too_long=too_long)
    assert [e.sample_id for e in kept] == ["s0", "s1"] and too_long == ["s2"]
    assert kept[0].answer_cut == 0 and kept[1].answer_cut > 0 and len(kept[1].input_ids) == 64
    report = over_length(64, {"train": kept, "val": []}, {"train": too_long, "val": []})
    assert report["answers_cut"] == {"train": 1, "val": 0}
    assert report["prompts_too_long"] == {"train": 1, "val": 0}
    assert report["samples"] == [
        {"sample_id": "s1", "split": "train", "cut": "answer", "tokens_cut": kept[1].answer_cut},
        {"sample_id": "s2", "split": "train", "cut": "prompt (left out)", "tokens_cut": None}]


def test_frozen_llm_only_projector_weights_change_after_a_step(model_tok, tmp_path):
    model, tok = model_tok
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ex = syn.examples(tok, model.placeholder_id)
    cfg = {**syn.TRAIN_CFG, "max_steps": 1, "warmup_ratio": 0.0}  # HF warmup starts at lr 0
    result = train(model, ex[:4], [], syn.videos(), cfg, tmp_path / "ckpt", "fp", tok.pad_token_id)
    assert result["steps"] == 1
    changed = sorted(n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n]))
    assert changed == ["projector.bias", "projector.weight"]
    assert sorted(model.trainable_state_dict()) == ["projector.bias", "projector.weight"]
    model.save_trainable(tmp_path / "w.safetensors")
    assert sorted(load_file(str(tmp_path / "w.safetensors"))) == ["projector.bias", "projector.weight"]


def test_no_test_sample_reaches_training(model_tok, tmp_path):
    model, tok = model_tok
    ex = syn.examples(tok, model.placeholder_id)
    splits = {f"s{i}": "train" for i in range(8)} | {"s5": "test"}
    with pytest.raises(ValueError, match="non-train samples"):
        train(model, ex[:6], [], syn.videos(), syn.TRAIN_CFG, tmp_path / "ckpt", "fp", tok.pad_token_id,
              splits=splits)


def test_projector_init_from_llava_style_checkpoint(model_tok, tmp_path):
    model, _ = model_tok
    w = torch.randn(model.embed_dim, model.vision_dim)
    b = torch.randn(model.embed_dim)
    torch.save({"model.mm_projector.weight": w, "model.mm_projector.bias": b}, tmp_path / "mm_projector.bin")
    model.init_projector(tmp_path / "mm_projector.bin", None)
    torch.testing.assert_close(model.projector.weight.detach(), w)
    torch.testing.assert_close(model.projector.bias.detach(), b)
    torch.save({"model.mm_projector.weight": torch.randn(3, 5)}, tmp_path / "bad.bin")
    with pytest.raises(ValueError, match="shape"):
        model.init_projector(tmp_path / "bad.bin", None)


def test_batched_greedy_generation_matches_one_at_a_time(model_tok):
    model, tok = model_tok
    vids = syn.videos()
    ex = [syn.enc(tok, model.placeholder_id, i, None, syn.prompt(i) + " extra words" * i) for i in range(4)]
    cfg = {"batch_size": 4, "max_new_tokens": 6, "do_sample": False, "temperature": 1.0, "top_p": 1.0,
           "num_beams": 1, "seed": 0}
    batched = generate(model, tok, ex, vids, cfg, torch.device("cpu"))
    single = [generate(model, tok, [e], vids, {**cfg, "batch_size": 1}, torch.device("cpu"))[0] for e in ex]
    assert batched == single
    assert all(isinstance(t, str) for t in batched) and any(batched)
