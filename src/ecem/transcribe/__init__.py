"""The transcription stage: WhisperX re-transcription of utterance clips and the text-source policy.

- `compat`  — the small torchaudio/pyannote fixes that let whisperx 3.7.2 run on torch 2.11
  (import before whisperx; `asr` does).
- `asr`     — batched WhisperX inference over many utterance clips with one model load.
- `wer`     — word error rate after `ecem.text.normalize_text`.
- `policy`  — `resolve_texts`: THE function that decides which text (MELD or ASR) a sample uses.
- `stage`   — entry points of the stage's rules.

Importing this package does not import whisperx (it is slow); `asr` does on first use.
"""
