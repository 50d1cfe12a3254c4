"""The operator's functions stay small: ruff's C901 (complexity 10) and PLR0913 (6 arguments) are
on for it (pyproject.toml), and a `noqa` for either is an exception that must name its reason.
There may be five at most: a gate that anyone can switch off line by line is no gate."""

from __future__ import annotations

import re
from pathlib import Path

OPERATOR = Path(__file__).resolve().parents[2] / "operator" / "connector_operator"
EXCEPTION = re.compile(r"#\s*noqa:[^#\n]*\b(C901|PLR0913)\b(?P<rest>[^\n]*)")
MAX_EXCEPTIONS = 5
MAX_MODULE_LINES = 450


def exceptions() -> list[tuple[str, str]]:
    found = []
    for path in sorted(OPERATOR.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = EXCEPTION.search(line)
            if match is not None:
                found.append((f"{path.relative_to(OPERATOR)}:{number}", match.group("rest").strip()))
    return found


def test_at_most_five_named_exceptions_each_with_a_reason() -> None:
    found = exceptions()
    assert len(found) <= MAX_EXCEPTIONS, found
    for where, reason in found:
        assert re.search(r"\(\w.{9,}\)", reason), f"{where}: a C901/PLR0913 exception needs its reason"


def test_the_exception_pattern_sees_a_planted_one() -> None:
    line = "def f(a, b, c, d, e, f, g):  # noqa: PLR0913  (click passes every option)"
    match = EXCEPTION.search(line)
    assert match is not None
    assert "click" in match.group("rest")
    assert EXCEPTION.search("x = 1  # noqa: E501") is None


def test_no_operator_module_is_over_450_lines() -> None:
    sizes = {str(p.relative_to(OPERATOR)): len(p.read_text().splitlines()) for p in OPERATOR.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}
