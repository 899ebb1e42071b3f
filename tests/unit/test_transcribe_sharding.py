"""Sharding of the transcription stage: every utterance in exactly one shard, dialogues whole,
and the gather step refuses shards that lose or duplicate utterances."""

from __future__ import annotations

import pandas as pd
import pytest

from ecem.artifacts import read_metadata, read_table, write_table
from ecem.transcribe.stage import SCHEMA, run_gather, shard_rows, transcribe_utterances

KEYS = ["meld_split", "dialogue_id", "utterance_id"]


def _utterances(n_dialogues: int = 40) -> pd.DataFrame:
    rows = []
    for split in ("train", "dev", "test"):
        for d in range(n_dialogues):
            for u in range(1 + d % 4):
                status = ["no_audio", "missing", "corrupt"][(d + u) % 3]
                rows.append({"meld_split": split, "dialogue_id": d, "utterance_id": u,
                             "text": f"{split} {d} {u}", "video_path": f"/nowhere/{split}/{d}_{u}.mp4",
                             "duration_s": 1.5, "status": status, "status_detail": f"why {d}/{u}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7])
def test_every_utterance_in_exactly_one_shard(n_shards):
    utt = _utterances()
    parts = [shard_rows(utt, k, n_shards) for k in range(n_shards)]
    together = pd.concat(parts, ignore_index=True)
    assert len(together) == len(utt)
    assert not together.duplicated(KEYS).any()
    assert set(map(tuple, together[KEYS].values)) == set(map(tuple, utt[KEYS].values))
    # a dialogue never straddles shards
    for k, part in enumerate(parts):
        for other in parts[k + 1:]:
            a = set(map(tuple, part[["meld_split", "dialogue_id"]].values))
            b = set(map(tuple, other[["meld_split", "dialogue_id"]].values))
            assert not a & b
    if n_shards > 1:
        assert sum(len(p) > 0 for p in parts) > 1  # work actually spreads


def test_skipped_statuses_and_gather(tmp_path):
    utt = _utterances(6)
    utt_path = tmp_path / "utterances.parquet"
    write_table(utt, utt_path, "dataset")
    paths = []
    for k in range(3):
        table = transcribe_utterances(shard_rows(utt, k, 3), {})  # nothing to decode: no model
        path = tmp_path / f"shard-{k}.parquet"
        write_table(table, path, "transcribe", {"shard": k}, schema=SCHEMA)
        paths.append(str(path))
    out = tmp_path / "transcripts.parquet"
    run_gather(paths, str(utt_path), str(out))
    got = read_table(out).merge(utt, on=KEYS, suffixes=("", "_utt"))
    assert len(got) == len(utt)
    no_audio = got[got["status_utt"] == "no_audio"]
    assert (no_audio["status"] == "no_audio").all()
    bad = got[got["status_utt"].isin(["missing", "corrupt"])]
    assert (bad["status"] == "failed").all()
    assert (bad["dataset_status"] == bad["status_utt"]).all()
    assert all(f"dataset status {s}" in d and w in d for s, d, w in
               zip(bad["status_utt"], bad["status_detail"], bad["status_detail_utt"]))
    assert got["wer_vs_meld"].isna().all() and (got["text_asr"] == "").all()
    assert read_metadata(out)["settings"]["shards"] == 3

    with pytest.raises(ValueError, match="missing"):
        run_gather(paths[:2], str(utt_path), str(tmp_path / "lost.parquet"))
    with pytest.raises(ValueError, match="more than one shard"):
        run_gather(paths + paths[:1], str(utt_path), str(tmp_path / "dup.parquet"))
