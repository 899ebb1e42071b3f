"""Feature stages: each sample's video tokens (`features.clip`: rules in `ecem.features.video_stage`,
extraction in `ecem.features.extract`, contract in `ecem.features.video`) and audio tokens
(`features.audio`: `ecem.features.audio_stage`, contract in `ecem.features.audio`), and the tiny
random CLIP towers the smoke config and the tests build in place of real checkpoints
(`ecem.features.tiny_models`). The facial-emotion features are their own stage, `ecem.faces`."""
