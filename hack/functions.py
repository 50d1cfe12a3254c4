"""The operator's largest functions, with ruff's complexity of each: `python -m hack.functions [root]`.

The structure issue asks for the ten largest before and after a change; this prints them for any
checkout (`root`, default this one), and the functions above the gate's complexity of 10.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

RUFF = Path(sys.executable).with_name("ruff")
FINDING = re.compile(r"(.+?):(\d+):\d+: C901 `(.+?)` is too complex \((\d+) > 0\)")


def complexities(package: Path) -> dict[tuple[Path, int], int]:
    command = [str(RUFF), "check", str(package), "--isolated", "--no-cache", "--select", "C901"]
    command += ["--config", "lint.mccabe.max-complexity=0", "--output-format", "concise"]
    found = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    return {
        (Path(m.group(1)).resolve(), int(m.group(2))): int(m.group(4))
        for m in map(FINDING.match, found.splitlines())
        if m is not None
    }


def functions(package: Path) -> list[tuple[int, int, str]]:
    """(lines, complexity, module:function) of every function of the package."""
    known = complexities(package)
    rows = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                rows.append(
                    (
                        lines,
                        known.get((path.resolve(), node.lineno), 1),
                        f"{path.relative_to(package)}:{node.name}",
                    )
                )
    return sorted(rows, reverse=True)


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    rows = functions(root / "operator" / "connector_operator")
    for lines, complexity, name in rows[:10]:
        print(f"{lines:4d} lines  complexity {complexity:3d}  {name}")
    over = [f"{name} ({complexity})" for _, complexity, name in rows if complexity > 10]
    print(f"above complexity 10: {len(over)}", *over, sep="\n  ")


if __name__ == "__main__":
    main()
