"""How cost grows with N: seconds per object and memory across runs of different sizes.

`python -m bench.scaling DIR...` reads every `n<N>.json` in the given results directories (the
latest run per N wins), and writes `scaling.md` (a table, with issue 13's two scaling targets) and
`scaling.png` (RSS, and seconds per object, against N on a log axis) into the first directory.
A run of N=10,000 keeps its own directory (`bench/results/n10000/`), so that its table and
Ready-over-time figure stay beside it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MB = 2**20 / 1_000_000  # MB per MiB: the JSON holds MiB, the targets and the figure are in MB
REFERENCE_N = 1000
TARGET_GROWTH = 1.3  # seconds per object at N=10,000 relative to N=1,000
TARGET_KIB_AT_REST = 40  # RSS per object at rest, at N=10,000


def _get(data: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def load(directories: list[Path]) -> dict[int, dict[str, Any]]:
    """The latest run per N found in `directories`."""
    runs: dict[int, dict[str, Any]] = {}
    for directory in directories:
        for path in directory.glob("n*.json"):
            try:
                result = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            n = int(result["parameters"]["n"])
            if n not in runs or result["started_at"] > runs[n]["started_at"]:
                runs[n] = result
    return dict(sorted(runs.items()))


def row(result: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of one run that the scaling table and plot use (None where a phase is missing)."""
    n = int(result["parameters"]["n"])
    seconds = _get(result, "phases.create.seconds_to_all_ready")
    floor = _get(result, "phases.floor.seconds_to_all_ready")
    start = _get(result, "phases.create.memory_idle_before_create.rss_mib")
    at_rest = _get(result, "phases.restart.memory_at_settled.rss_mib")
    return {
        "n": n,
        "namespaces": result["parameters"]["namespaces"],
        "seconds": seconds,
        "floor": floor,
        "per_object_ms": round(1000 * seconds / n, 2) if seconds else None,
        "floor_per_object_ms": round(1000 * floor / n, 2) if floor else None,
        "peak_mib": _get(result, "phases.create.memory_after_create.peak_rss_mib"),
        "start_mib": start,
        "at_rest_mib": at_rest,
        "kib_per_object_at_rest": round((at_rest - start) * 1024 / n, 1) if at_rest and start else None,
        "commit": _get(result, "operator_source.commit") or _get(result, "environment.commit"),
        "command": result.get("command", ""),
    }


COLUMNS = (
    "n",
    "namespaces",
    "seconds",
    "floor",
    "per_object_ms",
    "floor_per_object_ms",
    "peak_mib",
    "start_mib",
    "at_rest_mib",
    "kib_per_object_at_rest",
    "commit",
)


def markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        "# How cost grows with N",
        "",
        "Each row is the latest run of that size (`python -m bench.scaling`); seconds are to all "
        "Ready, memory is the operator's RSS from the runtime-only venv (MiB).",
        "",
        "| N | namespaces | seconds | floor s | ms per object | floor ms per object | peak RSS | "
        "RSS at start | RSS at rest | KiB per object at rest | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r[k] for k in COLUMNS]
        out.append("| " + " | ".join("—" if c is None else str(c) for c in cells) + " |")
    by_n = {r["n"]: r for r in rows}
    big, reference = by_n.get(10 * REFERENCE_N), by_n.get(REFERENCE_N)
    out += [
        "",
        "## Issue 13's scaling targets",
        "",
        "| measure | target | value | met |",
        "|---|---|---|---|",
    ]
    growth = None
    if big and reference and big["per_object_ms"] and reference["per_object_ms"]:
        growth = round(big["per_object_ms"] / reference["per_object_ms"], 2)
    kib = big["kib_per_object_at_rest"] if big else None
    out.append(_target("seconds per object, N=10,000 relative to N=1,000", f"<= {TARGET_GROWTH}x", growth,
                       growth is not None and growth <= TARGET_GROWTH))  # fmt: skip
    out.append(_target("RSS at rest per object, N=10,000", f"<= {TARGET_KIB_AT_REST} KiB", kib,
                       kib is not None and kib <= TARGET_KIB_AT_REST))  # fmt: skip
    out += ["", "Commands:", ""] + [f"- N={r['n']}: `{r['command']}`" for r in rows]
    out += ["", "Figure: `scaling.png`.", ""]
    return "\n".join(out)


def _target(name: str, target: str, value: Any, met: bool) -> str:
    shown = "—" if value is None else str(value)
    return f"| {name} | {target} | {shown} | {'yes' if met else '**no**' if value is not None else 'n/a'} |"


def figure(rows: list[dict[str, Any]], output: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    usable = [r for r in rows if r["per_object_ms"] is not None]
    if not usable:
        return False
    ns = [r["n"] for r in usable]
    fig, (memory, time_) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in (("peak_mib", "peak while creating"), ("at_rest_mib", "at rest (after a restart)"),
                       ("start_mib", "at start, no object")):  # fmt: skip
        points = [(r["n"], r[key] * MB) for r in usable if r[key] is not None]
        if points:
            memory.plot(*zip(*points, strict=True), marker="o", label=label)
    memory.set_xscale("log")
    memory.set_xlabel("objects (N)")
    memory.set_ylabel("operator RSS (MB)")
    memory.set_title("Memory")
    memory.legend()
    memory.grid(True, alpha=0.3)
    time_.plot(ns, [r["per_object_ms"] for r in usable], marker="o", label="operator")
    floor = [(r["n"], r["floor_per_object_ms"]) for r in usable if r["floor_per_object_ms"] is not None]
    if floor:
        time_.plot(*zip(*floor, strict=True), marker="s", label="floor (direct script)")
    time_.set_xscale("log")
    time_.set_xlabel("objects (N)")
    time_.set_ylabel("ms per object, to all Ready")
    time_.set_title("Time per object")
    time_.legend()
    time_.grid(True, alpha=0.3)
    fig.suptitle("open-connectors-operator: cost against N (python -m bench.scaling)", fontsize=10)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return True


def main() -> None:
    here = Path(__file__).resolve().parent / "results"
    directories = [Path(a) for a in sys.argv[1:]] or [here, here / "n10000"]
    rows = [row(result) for result in load(directories).values()]
    (directories[0] / "scaling.md").write_text(markdown(rows))
    figure(rows, directories[0] / "scaling.png")
    sys.stdout.write(markdown(rows))


if __name__ == "__main__":
    main()
