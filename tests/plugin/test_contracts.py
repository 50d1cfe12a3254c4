"""The plugin's import contracts bite (pyproject.toml): planted into a copy of the tree, an import
of the operator from the plugin, or of the plugin from the operator, breaks its contract, as
tests/contracts/test_import_contracts.py shows for the others. And the plugin keeps the
operator's size rules: modules under 450 lines (ruff's complexity and argument limits cover it
through `make lint`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.contracts.test_import_contracts import lint_imports, plant, tree

__all__ = ["plant", "tree"]

PLUGIN = Path(__file__).resolve().parents[2] / "operator" / "kubectl_openconnectors"
PLUGIN_APART = "The kubectl plugin is a client of the API"
OPERATOR_WITHOUT_PLUGIN = "The operator imports nothing of the kubectl plugin"

PLANTED = {
    "the plugin takes the operator's names instead of repeating them": (
        "operator/kubectl_openconnectors/planted.py",
        "from connector_operator.api import names",
        PLUGIN_APART,
    ),
    "the plugin reuses a test fixture": (
        "operator/kubectl_openconnectors/planted.py",
        "import tests.fixtures.waiting",
        PLUGIN_APART,
    ),
    "the operator uses the plugin's rendering": (
        "operator/connector_operator/handlers/planted.py",
        "import kubectl_openconnectors.render",
        OPERATOR_WITHOUT_PLUGIN,
    ),
}


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_import_breaks_the_plugins_contracts(plant: Path, case: str) -> None:
    where, statement, contract = PLANTED[case]
    (plant / where).write_text(f'"""Planted by {__name__}."""\n\n{statement}\n')
    result = lint_imports(plant)
    assert result.returncode != 0, f"{case}: lint-imports kept every contract\n{result.stdout}"
    verdict = re.search(re.escape(contract) + r".*?\b(KEPT|BROKEN)\b", " ".join(result.stdout.split()))
    assert verdict is not None, result.stdout
    assert verdict.group(1) == "BROKEN", f"{case}: {contract!r} was kept\n{result.stdout}"
    assert "planted" in result.stdout, result.stdout


def test_the_tree_as_it_is_keeps_the_plugins_contracts(tree: Path) -> None:
    result = lint_imports(tree)
    for contract in (PLUGIN_APART, OPERATOR_WITHOUT_PLUGIN):
        verdict = re.search(re.escape(contract) + r".*?\b(KEPT|BROKEN)\b", " ".join(result.stdout.split()))
        assert verdict is not None, result.stdout
        assert verdict.group(1) == "KEPT", result.stdout


def test_no_plugin_module_is_over_450_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in PLUGIN.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 450} == {}
