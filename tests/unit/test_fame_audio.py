"""FAME-Net's audio modality: the second projector, the `<audio>` splice, prompts, training and
generation with audio, and Table 3's A column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ecem.evaluate.tables import build_tables, display_table
from ecem.fame.data import Slot, collate, encode
from ecem.fame.generate import generate
from ecem.fame.model import FameModel, ensure_placeholder, load_llm
from ecem.fame.prompt import build_examples, build_prompt
from ecem.fame.train import train
from ecem.modalities import Modalities
from tests.unit import fame_synthetic as syn

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AUDIO = "<audio>"
AUDIO_DIM, N_AUDIO = 12, 4


def audios(n: int = 8, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"s{i}": rng.standard_normal((N_AUDIO, AUDIO_DIM)).astype(np.float16) for i in range(n)}


@pytest.fixture()
def model_tok(llm_dir):
    llm, tok = load_llm(str(llm_dir), torch.float32)
    video_id = ensure_placeholder(tok, syn.PLACEHOLDER)
    audio_id = ensure_placeholder(tok, AUDIO)
    torch.manual_seed(0)
    model = FameModel(llm, syn.VISION_DIM, video_id, AUDIO_DIM, audio_id)
    model.set_trainable(["projector.*", "audio_projector.*"])
    return model, tok


def enc(tok, model, i: int, with_audio: bool = True, answer: str | None = ""):
    prompt = syn.prompt(i) + (f" {AUDIO}" if with_audio else "")
    slot = Slot(AUDIO, model.audio_placeholder_id, N_AUDIO if with_audio else 0)
    return encode(tok, f"s{i}", prompt, syn.CAUSES[i] if answer == "" else answer, syn.PLAIN, syn.PLACEHOLDER,
                  model.placeholder_id, syn.N_VIDEO, 256, slot)


def test_both_placeholders_stay_single_tokens(model_tok):
    model, tok = model_tok
    assert model.placeholder_id != model.audio_placeholder_id
    assert tok.encode(f"x {syn.PLACEHOLDER} {AUDIO} y", add_special_tokens=False).count(model.audio_placeholder_id) == 1
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == [
        "audio_projector.bias", "audio_projector.weight", "projector.bias", "projector.weight"]


def test_splice_puts_exactly_the_projected_audio_tokens_at_the_audio_positions(model_tok):
    model, tok = model_tok
    vids, auds = syn.videos(), audios()
    batch = collate([enc(tok, model, 0), enc(tok, model, 2, with_audio=False), enc(tok, model, 5)], vids,
                    tok.pad_token_id, audios=auds)
    assert batch["audio"].shape == (2 * N_AUDIO, AUDIO_DIM)  # s0 and s5 only, in batch order
    with torch.no_grad():
        embeds = model.splice(batch["input_ids"], batch["video"], batch["audio"])
        table = model.llm.get_input_embeddings().weight
        for row, sid in enumerate(["s0", "s2", "s5"]):
            ids = batch["input_ids"][row]
            a_slots = (ids == model.audio_placeholder_id).nonzero().flatten()
            v_slots = (ids == model.placeholder_id).nonzero().flatten()
            if sid == "s2":
                assert len(a_slots) == 0
            else:
                assert len(a_slots) == N_AUDIO and torch.all(a_slots.diff() == 1)
                expected = model.audio_projector(torch.from_numpy(auds[sid].astype(np.float32)))
                torch.testing.assert_close(embeds[row, a_slots], expected)
            torch.testing.assert_close(embeds[row, v_slots],
                                       model.projector(torch.from_numpy(vids[sid].astype(np.float32))))
            text = ((ids != model.placeholder_id) & (ids != model.audio_placeholder_id)).nonzero().flatten()
            torch.testing.assert_close(embeds[row, text], table[ids[text]])
    with pytest.raises(ValueError, match="audio placeholder positions"):
        model.splice(batch["input_ids"], batch["video"], batch["audio"][:-1])
    with pytest.raises(ValueError, match="placeholders for 0 tokens"):
        encode(tok, "s1", syn.prompt(1) + f" {AUDIO}", None, syn.PLAIN, syn.PLACEHOLDER, model.placeholder_id,
               syn.N_VIDEO, 256, Slot(AUDIO, model.audio_placeholder_id, 0))


def test_training_moves_both_projectors_and_generation_hears_audio(model_tok, tmp_path):
    model, tok = model_tok
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ex = [enc(tok, model, i, with_audio=i != 3) for i in range(6)]
    cfg = {**syn.TRAIN_CFG, "max_steps": 2, "warmup_ratio": 0.0}
    train(model, ex[:4], ex[4:], syn.videos(), cfg, tmp_path / "ckpt", "fp", tok.pad_token_id, audios=audios())
    changed = sorted(n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n]))
    assert changed == ["audio_projector.bias", "audio_projector.weight", "projector.bias", "projector.weight"]
    gen = [enc(tok, model, i, answer=None) for i in range(2)]
    cfg = {"batch_size": 2, "max_new_tokens": 4, "do_sample": False, "temperature": 1.0, "top_p": 1.0,
           "num_beams": 1, "seed": 0}
    heard = generate(model, tok, gen, syn.videos(), cfg, torch.device("cpu"), audios())
    silent = generate(model, tok, gen, syn.videos(), cfg, torch.device("cpu"), {k: 0 * v for k, v in audios().items()})
    assert len(heard) == 2 and all(isinstance(t, str) for t in heard)
    with torch.no_grad():  # what the audio tokens change is the input the LLM sees
        b1 = collate(gen, syn.videos(), tok.pad_token_id, left_pad=True, audios=audios())
        assert not torch.equal(model.splice(b1["input_ids"], b1["video"], b1["audio"]),
                               model.splice(b1["input_ids"], b1["video"], 0 * b1["audio"]))
    assert isinstance(silent, list)


def test_prompts_carry_audio_only_for_samples_with_audio():
    cfg = {"instruction": "Explain why {emotion}.", "utterance": "<{speaker}: {text}>", "context": "{turns}",
           "turn": "{speaker}: {text}", "video_placeholder": "<video>", "audio_placeholder": AUDIO,
           "face": "Face: {face_emotion}.", "face_unknown": "none"}
    mods = Modalities.from_experiment({"video": True, "text": False, "face": True, "audio": True})
    assert build_prompt({"emotion": "joy", "face_emotion": "joy", "has_audio": True}, mods, cfg) == \
        "Explain why joy. <video> <audio> Face: joy."
    assert AUDIO not in build_prompt({"emotion": "joy", "face_emotion": "joy", "has_audio": False}, mods, cfg)
    assert not Modalities.from_experiment({"video": True, "text": False, "face": False}).audio
    annotations = pd.DataFrame({"sample_id": ["a", "b"], "meld_split": "train", "dialogue_id": 0,
                                "utterance_id": [1, 2], "split": "train", "emotion": "joy", "speaker": "Ross",
                                "cause": "c"})
    clips = pd.DataFrame({"sample_id": ["a", "b"], "status": "ok"})
    utts = pd.DataFrame({"meld_split": "train", "dialogue_id": [0, 0], "utterance_id": [1, 2], "speaker": "Ross"})
    examples, summary = build_examples(annotations, clips, utts, None, None,
                                       Modalities(video=False, text=False, face=False, audio=True), cfg,
                                       audio_ids={"a"})
    assert examples["prompt"].str.contains(AUDIO, regex=False).tolist() == [True, False]
    assert summary["no_audio"] == 1 and summary["n_examples"] == 2  # kept and counted, not dropped


def test_table3_has_an_audio_column_and_puts_audio_rows_after_the_papers():
    def metrics(v):
        return {"kind": "fame", "n_samples": 3, "n_empty_predictions": 0, "n_missing": 0,
                "metrics": {"bleu4": {"value": v, "ci_low": v, "ci_high": v, "status": "ok", "settings": "4-gram"}}}

    flags = {"V+T+E+A": (1, 1, 1, 1), "V+T+E": (1, 1, 1, 0), "V": (1, 0, 0, 0)}
    cards = {k: {"config": {"experiment": {"video": bool(v), "text": bool(t), "face": bool(e), "audio": bool(a),
                                           "text_source": "meld"}}} for k, (v, t, e, a) in flags.items()}
    tables = build_tables({k: metrics(0.1) for k in flags}, cards)
    t3 = display_table("table3", tables["table3"][0])
    assert t3["modalities"].tolist() == ["V", "V+T+E", "V+T+E+A"]
    assert t3["A"].tolist() == ["–", "–", "✓"] and t3["V"].tolist() == ["✓", "✓", "✓"]
    assert "A audio" in tables["table3"][1]
