"""Which frames each sample's video tokens come from, and decoding them.

A sample is a dialogue prefix; :func:`uniform_frame_indices` picks its `T` positions on the
prefix timeline (Video-ChatGPT's rule), and :func:`plan_samples` maps them onto source frames:
in ``segments`` mode onto the deduplicated utterance segments (`segments.parquet`), so each
distinct source frame is decoded once per dialogue; in ``rendered_clip`` mode onto the rendered
prefix clip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecem.artifacts import recorded_path
from ecem.playlist import is_playlist


def uniform_frame_indices(n_frames: int, num_frames: int) -> list[int]:
    """Video-ChatGPT's uniform sampling of `min(n_frames, num_frames)` frame indices.

    `[0, n_frames - 1]` is cut into `t` equal bins; each bin's edges are rounded (half to even,
    as NumPy rounds) and the floor-mean of the two edges is taken. With `n_frames <= num_frames`
    consecutive bins can round onto the same frame, so a frame may repeat and another be skipped;
    that is the reference behaviour and is kept.
    """
    if n_frames <= 0:
        return []
    t = min(int(n_frames), int(num_frames))
    seg = float(n_frames - 1) / t
    out = []
    for i in range(t):
        start = int(np.round(seg * i))
        end = int(np.round(seg * (i + 1)))
        out.append((start + end) // 2)
    return out


@dataclasses.dataclass
class SamplePlan:
    """Which frames one sample needs: `picks[i]` = (source video, frame index in it)."""

    sample_id: str
    meld_split: str
    dialogue_id: int
    utterance_id: int
    n_frames_clip: int  # frames of the prefix timeline
    positions: list[int]  # sampled positions on the prefix timeline
    picks: list[tuple[str, int]]


def plan_samples(clips: pd.DataFrame, segments: pd.DataFrame, num_frames: int, sampling: str,
                 base_dir: str | Path = ".") -> tuple[list[SamplePlan], dict[str, str]]:
    """Frame plans for the `status == ok` samples of `clips`; and {sample_id: reason} for the rest.

    ``segments``: positions on the prefix timeline (the concatenation of the sample's segments)
    are mapped to source-clip frames: position k of a segment is source frame
    `source_frames[k]` of its `video_path` (segments.parquet; the frame the rendered clip shows
    there, also where the dataset stage resampled a clip's frame rate). ``rendered_clip``:
    positions index the rendered prefix clip (`clip_path`) directly.
    """
    if sampling not in ("segments", "rendered_clip"):
        raise ValueError(f"unknown sampling mode {sampling!r} (segments | rendered_clip)")
    source = {(r.meld_split, int(r.dialogue_id), int(r.utterance_id)):
              (str(recorded_path(r.video_path, base_dir)), [int(f) for f in r.source_frames])
              for r in segments.itertuples(index=False)}
    plans: list[SamplePlan] = []
    excluded: dict[str, str] = {}
    for row in clips.sort_values("sample_id").itertuples(index=False):
        sid = str(row.sample_id)
        if row.status != "ok":
            excluded[sid] = f"{row.status}: {row.status_detail}".strip()
            continue
        segs = list(row.segments)
        total = int(sum(int(s["n_frames"]) for s in segs))
        if total <= 0 or total != int(row.n_frames):
            excluded[sid] = f"corrupt: segment frames {total} != clip frames {int(row.n_frames)}"
            continue
        positions = uniform_frame_indices(total, num_frames)
        key = (row.meld_split, int(row.dialogue_id))
        if sampling == "rendered_clip":
            if not isinstance(row.clip_path, str) or not row.clip_path:
                excluded[sid] = "corrupt: no rendered clip_path"
                continue
            clip = str(recorded_path(row.clip_path, base_dir))
            picks = [(clip, p) for p in positions]
        else:
            starts = np.cumsum([0] + [int(s["n_frames"]) for s in segs])
            videos = [source.get((key[0], key[1], int(s["utterance_id"]))) for s in segs]
            if any(v is None or len(v[1]) != int(s["n_frames"]) for v, s in zip(videos, segs)):
                excluded[sid] = "corrupt: a segment of the sample is missing from segments.parquet"
                continue
            seg_of = np.searchsorted(starts, positions, side="right") - 1
            picks = [(videos[k][0], videos[k][1][p - int(starts[k])])
                     for p, k in zip(positions, seg_of.tolist())]
        plans.append(SamplePlan(sid, str(row.meld_split), int(row.dialogue_id),
                                int(row.utterance_id), total, positions, picks))
    return plans, excluded


def decode_frames(path: str, indices: Sequence[int], decoder: str = "pyav",
                  threaded: bool | None = True) -> np.ndarray:
    """Decode the frames `indices` (sorted, distinct) of `path` as upright uint8 (k, H, W, 3).

    `threaded`: PyAV's codec threading, as in :func:`ecem.media.iter_frames` (decord always
    decodes on one thread). A prefix-clip playlist is always decoded by PyAV: decord cannot pass
    the concat demuxer the options a playlist needs (the frames are the same either way); so is a
    clip with a display-rotation tag: decord 0.6 fails on one, PyAV turns its frames upright.
    """
    from ecem.media import display_turns, read_frames

    if decoder == "pyav" or is_playlist(path) or (decoder == "decord" and display_turns(path)):
        return read_frames(path, list(indices), threaded=threaded)
    if decoder == "decord":
        import decord

        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        if indices and max(indices) >= len(vr):
            raise IndexError(f"{path}: frame {max(indices)} beyond the clip's {len(vr)} frames")
        return vr.get_batch(list(indices)).asnumpy()
    raise ValueError(f"unknown decoder {decoder!r} (pyav | decord)")
