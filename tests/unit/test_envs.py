"""The conda envs (envs/<name>.yaml, one per software stack): every script rule names one, each
env provides every package its rules' code imports, and its pins are requirements/lock.txt's.

What a rule imports is read from the code (its script and the `ecem` modules that importing the
script's modules runs, imports inside functions included); which distribution ships an import
and what a listed package pulls in are read from this venv's installed metadata."""

import ast
import re
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from ecem import provenance
from tests.helpers import REPO

ENVS = REPO / "envs"
REQUIREMENTS = REPO / "requirements"
RULE = re.compile(r"^(?:    )?rule (\w+):\n(.*?)(?=^(?:    )?rule |^use rule |\Z)", re.M | re.S)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(text: str) -> dict[str, str]:
    return {_norm(m[1]): m[2] for m in re.finditer(r"^\s*(?:- )?([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)}


def _rules() -> dict[str, tuple[str | None, Path]]:
    """{rule: (its env name or None, its script)} over every rule that runs a script."""
    rules = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for name, body in RULE.findall(smk.read_text()):
            script = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', body)
            if script:
                env = re.search(r'conda:\s*\n\s*conda_env\("(\w+)"\)', body)
                rules[name] = (env and env[1], REPO / "workflow" / "scripts" / script[1])
    return rules


def _env(name: str) -> tuple[set[str], dict[str, str]]:
    """(packages the env installs: its pip list and its post-deploy's --no-deps files, their pins)."""
    spec = yaml.safe_load((ENVS / f"{name}.yaml").read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    pins = _pins("\n".join(p for p in pip if not p.startswith("-")))
    post = (ENVS / f"{name}.post-deploy.sh").read_text()
    for nodeps in re.findall(r"nodeps-\w+\.txt", post):
        pins |= _pins((REQUIREMENTS / nodeps).read_text())
    return set(pins), pins


@cache
def _pulled_in(dist: str) -> frozenset[str]:
    """`dist` and what installing it pulls in (its requirements, no extras, followed)."""
    out, todo = set(), [dist]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_norm(req.name))
    return frozenset(out)


def _imported_distributions(script: Path) -> set[str]:
    """Distributions that the script's code imports anywhere (the `ecem` package aside)."""
    entries = {n.module for n in ast.walk(ast.parse(script.read_text()))
               if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("ecem.")}
    files = [script, *provenance.module_closure(entries).values()]
    top = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                top.add(node.module.split(".")[0])
    shipped = metadata.packages_distributions()
    return {_norm(d) for m in top - {"ecem"} for d in shipped.get(m, [])}


RULES = _rules()


def test_every_script_rule_names_an_env_that_exists_with_its_post_deploy_script():
    assert RULES and all(env is not None for env, _ in RULES.values()), \
        [r for r, (env, _) in RULES.items() if env is None]
    for env in {env for env, _ in RULES.values()}:
        assert (ENVS / f"{env}.yaml").is_file() and (ENVS / f"{env}.post-deploy.sh").is_file()
    assert {p.stem for p in ENVS.glob("*.yaml")} == {env for env, _ in RULES.values()}  # none unused


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_rules_env_provides_what_its_code_imports(rule):
    env, script = RULES[rule]
    listed, _ = _env(env)
    provided = set().union(*(_pulled_in(d) for d in listed))
    assert _imported_distributions(script) - provided == set()


def test_env_pins_are_the_lock_files():
    locked = _pins((REQUIREMENTS / "lock.txt").read_text()) | _pins((REQUIREMENTS / "torch.txt").read_text())
    nodeps = _pins((REQUIREMENTS / "nodeps-faces.txt").read_text()) | _pins(
        (REQUIREMENTS / "nodeps-models.txt").read_text())
    for path in ENVS.glob("*.yaml"):
        _, pins = _env(path.stem)
        assert {k: v for k, v in pins.items() if k not in nodeps} == {
            k: locked[k] for k in pins if k not in nodeps}, path.name


def test_nodeps_txt_installs_every_nodeps_file():
    included = re.findall(r"^-r (\S+)$", (REQUIREMENTS / "nodeps.txt").read_text(), re.M)
    assert sorted(included) == sorted(p.name for p in REQUIREMENTS.glob("nodeps-*.txt"))
