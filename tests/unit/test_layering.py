"""The package's layering: each stage imports shared modules below it, never another stage, and
shared modules import no stage (so a stage is found, read and changed in one place). Above them,
the applications (`ecem explain` and the command line) may use every stage; nothing uses them."""

from ecem.provenance import import_graph

STAGES = {"corpus", "dataset", "transcribe", "features", "faces", "fame", "evaluate"}
APPS = {"ecem.explain", "ecem.cli", "ecem.__main__"}


def _home(module: str) -> str:
    if module in APPS:
        return "app"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in STAGES else "shared"


def test_stages_import_only_shared_modules_and_shared_modules_no_stage():
    graph = import_graph()
    assert {"ecem.tokens", "ecem.text_policy", "ecem.dataset.stage", "ecem.fame.stage", "ecem.explain"} <= set(graph)
    crossings = sorted((a, b) for a, targets in graph.items() for b in targets
                       if _home(a) != "app" and _home(b) != "shared" and _home(a) != _home(b))
    assert crossings == []
