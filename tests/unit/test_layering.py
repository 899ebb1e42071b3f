"""The package's layering: each stage imports shared modules below it, never another stage, and
shared modules import no stage (so a stage is found, read and changed in one place)."""

from ecem.provenance import import_graph

STAGES = {"corpus", "dataset", "transcribe", "features", "faces", "fame", "evaluate"}


def _home(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in STAGES else "shared"


def test_stages_import_only_shared_modules_and_shared_modules_no_stage():
    graph = import_graph()
    assert {"ecem.tokens", "ecem.text_policy", "ecem.dataset.stage", "ecem.fame.stage"} <= set(graph)
    crossings = sorted((a, b) for a, targets in graph.items() for b in targets
                       if _home(b) != "shared" and _home(a) != _home(b))
    assert crossings == []
