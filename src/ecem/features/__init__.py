"""Feature stages: CLIP spatio-temporal video tokens (`ecem.features.extract`) and the tiny random
models the offline demo builds in place of real checkpoints (`ecem.features.tiny_models`)."""
