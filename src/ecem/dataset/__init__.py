"""The dataset stage: MELD + ECEM annotations → samples, probed clips and prefix clips."""
