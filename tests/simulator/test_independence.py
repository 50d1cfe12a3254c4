"""The simulator stands in for a third-party service: it must not share code with the operator."""

from __future__ import annotations

import ast
from pathlib import Path

import open_connectors_simulator

PACKAGE_DIR = Path(open_connectors_simulator.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules.add(node.module)
    return modules


def test_the_simulator_imports_nothing_from_the_operator() -> None:
    sources = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(sources) > 10, PACKAGE_DIR
    offending = {
        f"{path.relative_to(PACKAGE_DIR)}: {module}"
        for path in sources
        for module in _imported_modules(path)
        if module == "connector_operator" or module.startswith("connector_operator.")
    }
    assert not offending


def test_the_simulator_is_not_part_of_the_operator_package() -> None:
    import connector_operator

    operator_dir = Path(connector_operator.__file__).parent
    # Sources only: a checkout from before the move may keep an untracked __pycache__ there.
    assert not list((operator_dir / "simulator").glob("*.py"))
    assert PACKAGE_DIR.parent.name == "simulator"
