"""The import-linter contracts in pyproject.toml bite: each forbidden direction, planted, fails them.

A contract that passes whatever the code does is worse than none (the old "simulator is
independent" contract kept passing with the simulator importing the operator's client). So each
case here plants one forbidden import into a temporary copy of the tree, runs `lint-imports` on
that copy, and expects the named contract to break; the unmodified copy must keep every contract.
A plant into a module that exists is appended to it (a cycle needs an existing module to close
it), and the module is restored afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("operator", "simulator", "tests", "bench", "hack")

LAYERS = "Operator layers"
RECONCILER_LAYERS = "Inside the reconciler"
ACYCLIC = "No import cycles anywhere in the operator"
ONLY_HANDLERS_KOPF = "Only the handlers speak kopf"
BELOW_RECONCILER = "Below the reconciler nothing reads settings"
PURE = "The domain and the API types are pure"
NO_DEV_CODE = "The operator imports no simulator, test, benchmark or dev tooling code"
SIMULATOR_APART = "The simulator stands in for a third-party service"
NO_KUBERNETES = "The operator does not use the kubernetes package"

# (where the planted module goes, what it imports, the contract that must break)
PLANTED = {
    "simulator uses the operator's platform client": (
        "simulator/open_connectors_simulator/planted.py",
        "import connector_operator.openconnectors.client",
        SIMULATOR_APART,
    ),
    "simulator uses the operator's domain": (
        "simulator/open_connectors_simulator/planted.py",
        "from connector_operator.domain import desired",
        SIMULATOR_APART,
    ),
    "operator uses the simulator": (
        "operator/connector_operator/openconnectors/planted.py",
        "import open_connectors_simulator.catalog",
        NO_DEV_CODE,
    ),
    "operator uses test fixtures": (
        "operator/connector_operator/handlers/planted.py",
        "import tests.fixtures.operator",
        NO_DEV_CODE,
    ),
    "operator uses the benchmark": (
        "operator/connector_operator/planted.py",
        "import bench.config",
        NO_DEV_CODE,
    ),
    "operator uses dev tooling": (
        "operator/connector_operator/kube/planted.py",
        "import hack.controlplane.cluster",
        NO_DEV_CODE,
    ),
    "domain reaches up into the handlers": (
        "operator/connector_operator/domain/planted.py",
        "import connector_operator.reconciler.runtime",
        LAYERS,
    ),
    "kube uses the platform client (siblings)": (
        "operator/connector_operator/kube/planted.py",
        "import connector_operator.openconnectors.client",
        LAYERS,
    ),
    "handlers reach up into run": (
        "operator/connector_operator/handlers/planted.py",
        "import connector_operator.run",
        LAYERS,
    ),
    "a new top-level module outside the layers": (
        "operator/connector_operator/planted_helpers.py",
        "import json",  # any module the layers do not place breaks them (exhaustive = true)
        LAYERS,
    ),
    "the platform client reads the metrics": (
        "operator/connector_operator/openconnectors/planted.py",
        "import connector_operator.metrics",
        BELOW_RECONCILER,
    ),
    "the engine reads the settings": (
        "operator/connector_operator/engine/planted.py",
        "import connector_operator.settings",
        BELOW_RECONCILER,
    ),
    "the engine reaches up into the reconciler": (
        "operator/connector_operator/engine/objects.py",
        "import connector_operator.reconciler.runtime",
        LAYERS,
    ),
    "the remote part reaches up into the instance pass": (
        "operator/connector_operator/reconciler/remote.py",
        "import connector_operator.reconciler.instance",
        RECONCILER_LAYERS,
    ),
    "a cycle between two engine modules": (
        "operator/connector_operator/engine/wakeups.py",
        "import connector_operator.engine.scheduler",  # the scheduler imports wakeups
        ACYCLIC,
    ),
    "a cycle closed by a function-level import": (
        "operator/connector_operator/engine/wakeups.py",
        "def _planted() -> None:\n    import connector_operator.engine.secretwaits",
        ACYCLIC,
    ),
    "a cycle closed by a TYPE_CHECKING import (the old secretholds <-> secretreads)": (
        "operator/connector_operator/engine/secretholds.py",
        "if TYPE_CHECKING:\n    import connector_operator.engine.secretreads",
        ACYCLIC,
    ),
    "the reconciler imports kopf": (
        "operator/connector_operator/reconciler/remote.py",
        "import kopf",
        ONLY_HANDLERS_KOPF,
    ),
    "the engine imports kopf": (
        "operator/connector_operator/engine/planted.py",
        "import kopf",
        ONLY_HANDLERS_KOPF,
    ),
    "the domain imports kopf": ("operator/connector_operator/domain/planted.py", "import kopf", PURE),
    "the API types import httpx": ("operator/connector_operator/api/planted.py", "import httpx", PURE),
    "the operator imports the kubernetes package": (
        "operator/connector_operator/handlers/planted.py",
        "import kubernetes",
        NO_KUBERNETES,
    ),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's Python packages and pyproject.toml, for planting imports."""
    copy = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "results", "*.json", "*.go", "go.*")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, ahead of the editable installs of the real tree.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "operator"), str(tree / "simulator")])}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def plant(tree: Path) -> Iterator[Path]:
    """Yields the tree; removes whatever was planted in it afterwards, and restores every module
    a plant was appended to."""
    before = set(tree.rglob("planted*.py"))
    originals = {path: path.read_text() for path in tree.rglob("*.py") if "operator" in path.parts}
    yield tree
    for planted in set(tree.rglob("planted*.py")) - before:
        planted.unlink()
    for path, text in originals.items():
        if path.read_text() != text:
            path.write_text(text)


def test_the_tree_as_it_is_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    # It analysed the copy, not the installed tree.
    assert "Analyzed" in result.stdout


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_import_breaks_its_contract(plant: Path, case: str) -> None:
    where, statement, contract = PLANTED[case]
    target = plant / where
    if target.exists():  # appended: a TYPE_CHECKING plant finds the module's own import of it
        header = "" if "TYPE_CHECKING" not in statement else "from typing import TYPE_CHECKING\n"
        target.write_text(f"{target.read_text()}\n{header}# planted\n{statement}\n")
    else:
        target.write_text(f'"""Planted by {__name__}."""\n\n{statement}\n')
    result = lint_imports(plant)
    assert result.returncode != 0, f"{case}: lint-imports kept every contract\n{result.stdout}"
    verdict = re.search(re.escape(contract) + r".*?\b(KEPT|BROKEN)\b", " ".join(result.stdout.split()))
    assert verdict is not None, result.stdout
    assert verdict.group(1) == "BROKEN", f"{case}: {contract!r} was kept\n{result.stdout}"
    # The planted import is what broke it (proves the copy, not the installed tree, was read).
    assert "planted" in result.stdout or any(name in result.stdout for name in names(statement)), (
        result.stdout
    )


def names(statement: str) -> tuple[str, str]:
    """The planted import's module, in full and as lint-imports names it in a cycle (relative)."""
    module = statement.split("import ")[-1].split()[0]
    return f"-> {module}", "." + module.rsplit(".", 1)[-1]
