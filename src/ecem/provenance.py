"""Which code made an artifact: the `ecem` modules a job runs, hashed by content.

Snakemake does not follow Python imports, and file inputs are compared by modification time, so
a fresh clone or a `git checkout` would look like an edit of every module. Instead each rule
passes `code_version(its workflow script)` as a param: a digest of the script's content and of
every `ecem` module the script runs. A script calls one entry function of a stage module
(`from ecem.dataset.stage import run_split`): that module's file counts, and of its imports only
those the entry function (and the module's own helpers it calls) use, so an edit of
`ecem.dataset.split` reruns the split job, not clip rendering. Every other module counts whole,
followed transitively (imports inside functions included, and the `__init__` of every package on
the way, which Python runs too). Only a real edit of code a job runs changes its digest, and
Snakemake's params trigger then reruns exactly those jobs. The FAME training run card records
something wider: `code_hashes` of its entry module's whole import closure, one hash per module
(`code_sha256`), so a card names every module that could have shaped the checkpoint.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGE = "ecem"
PACKAGE_DIR = Path(__file__).resolve().parent
HASH_LIMIT = 512 * 2**20  # input files above this are recorded by size, not hashed (a 7B checkpoint)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks (for inputs of any size)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def module_file(name: str) -> Path | None:
    """The source file of package module `name` (`ecem.a.b` → a/b.py or a/b/__init__.py)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


@lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@lru_cache(maxsize=None)
def _module_bindings(path: Path, name: str) -> dict[str, str]:
    """`_bindings` of a whole module file (every workflow script's closure reads the same files)."""
    return _bindings(_tree(path), path, name)


def _bindings(node: ast.AST, path: Path, name: str) -> dict[str, str]:
    """{bound name: what it refers to} for the import statements inside `node`: a module
    (`import ecem.x`, `from ecem import x`) or a module's attribute (`from ecem.x import f`)."""
    bound: dict[str, str] = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            for alias in sub.names:
                bound[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(sub, ast.ImportFrom):
            if sub.level:
                base = _package_of(name, path).split(".")
                base = base[: len(base) - (sub.level - 1)]
                module = ".".join(base + ([sub.module] if sub.module else []))
            else:
                module = sub.module or ""
            for alias in sub.names:
                bound[alias.asname or alias.name] = f"{module}.{alias.name}"
    return bound


def _ecem_modules(targets: Iterable[str]) -> set[str]:
    """The `ecem` modules behind import targets (`ecem.x.f` → `ecem.x`, `ecem.x` → itself)."""
    found = set()
    for target in targets:
        if target.split(".")[0] != PACKAGE:
            continue
        module = target if module_file(target) else target.rpartition(".")[0]
        if module_file(module):
            found.add(module)
    return found


@lru_cache(maxsize=None)
def _imports(path: Path, name: str) -> tuple[str, ...]:
    """`ecem` modules that the code in `path` (module `name`) imports, anywhere in the file."""
    return tuple(sorted(_ecem_modules(_module_bindings(path, name).values())))


def _function_imports(name: str, function: str) -> set[str]:
    """`ecem` modules that `function` of module `name` uses: through the module's imports, its
    own imports, and the module's other functions it calls (followed)."""
    path = module_file(name)
    assert path is not None
    tree = _tree(path)
    module_level = _bindings(ast.Module(body=[n for n in tree.body if isinstance(n, (
        ast.Import, ast.ImportFrom))], type_ignores=[]), path, name)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    used, todo, seen = set(), [function], set()
    while todo:
        fn = todo.pop()
        if fn in seen or fn not in defs:
            continue
        seen.add(fn)
        node = defs[fn]
        used.update(_bindings(node, path, name).values())
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                if sub.id in module_level:
                    used.add(module_level[sub.id])
                elif sub.id in defs:
                    todo.append(sub.id)
    return _ecem_modules(used)


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def module_closure(entries: Iterable[str], seen: dict[str, Path] | None = None) -> dict[str, Path]:
    """Every `ecem` module that importing `entries` runs: {module name: source file}."""
    todo = [p for e in entries for p in _with_parents(e) if module_file(p)]
    seen = dict(seen or {})
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name)
        if path is None:
            raise ModuleNotFoundError(f"package module {name!r} not found under {PACKAGE_DIR}")
        seen[name] = path
        todo.extend(p for m in _imports(path, name) for p in _with_parents(m) if p not in seen)
    return dict(sorted(seen.items()))


def script_closure(script: str | Path) -> dict[str, Path]:
    """The `ecem` modules a workflow script runs (see the module docstring)."""
    path = Path(script).resolve()
    tree = _tree(path)
    entry_files: dict[str, Path] = {}
    whole: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module and module_file(node.module):
            functions = [a.name for a in node.names if not module_file(f"{node.module}.{a.name}")]
            if functions:  # entry functions of a module: that file, plus what they use
                entry_files[node.module] = module_file(node.module)  # type: ignore[assignment]
                whole.update(_with_parents(node.module)[:-1])
                for fn in functions:
                    whole.update(_function_imports(node.module, fn))
            whole.update(f"{node.module}.{a.name}" for a in node.names
                         if module_file(f"{node.module}.{a.name}"))
        elif isinstance(node, ast.Import):
            whole.update(_ecem_modules(a.name for a in node.names))
    return dict(sorted(module_closure(whole - set(entry_files), entry_files).items()))


def code_hashes(entries: Iterable[str]) -> dict[str, str]:
    """{module: SHA-256 of its source} over the closure of `entries` (whole modules)."""
    return {name: sha256_file(path) for name, path in module_closure(entries).items()}


def code_version(script: str | Path) -> str:
    """One digest of a workflow script and the package code it runs (see the module docstring).
    The script counts by content too, so the profiles leave out Snakemake's own `code` trigger,
    which compares the script's *file time* with the outputs' and reruns on every fresh clone."""
    hashes = {name: sha256_file(path) for name, path in script_closure(script).items()}
    hashes[f"script {Path(script).name}"] = sha256_file(script)
    text = "\n".join(f"{name} {digest}" for name, digest in hashes.items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_inputs(paths: Mapping[str, str | None]) -> dict[str, Any]:
    """sha256 of each input artifact (a directory: of each file inside, large ones by size)."""
    out: dict[str, Any] = {}
    for name, path in sorted(paths.items()):
        if path is None:
            continue
        p = Path(path)
        if p.is_dir():
            out[name] = {str(f.relative_to(p)): (sha256_file(f) if f.stat().st_size <= HASH_LIMIT
                                                 else f"size:{f.stat().st_size}")
                         for f in sorted(p.rglob("*")) if f.is_file()}
        elif p.exists():
            out[name] = sha256_file(p)
        else:  # a hub id
            out[name] = f"hub:{path}"
    return out


def installed_version(dist: str) -> str | None:
    """The installed version of distribution `dist`, None when it is not installed. The one
    lookup behind every version a card, a settings string or a rule parameter names; each caller
    words the missing case itself, as its artifacts always have."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed versions of `packages` (and Python's), for run cards."""
    return {"python": platform.python_version(),
            **{name: installed_version(name) or "absent" for name in packages}}


def fingerprint(obj: Any) -> str:
    """SHA-256 of a JSON-able object (keys sorted), e.g. of the settings a checkpoint belongs to."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def import_graph() -> dict[str, tuple[str, ...]]:
    """{module: the `ecem` modules it imports} for every module of the package (the layering
    test reads it: stages import shared modules, never each other)."""
    graph = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
        name = ".".join([PACKAGE, *(p for p in parts if p != "__init__")])
        graph[name] = _imports(path.resolve(), name)
    return graph
