"""The figure: objects Ready over time, operator against floor, captioned with the command.

matplotlib (from `requirements-bench.lock`, which `make bench` installs) is imported only when a
figure is drawn, so that `python -m bench.run --help` works in the test venv too.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def ready_over_time(result: Mapping[str, Any], output: Path) -> bool:
    """Write the PNG; False when no phase produced a curve."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on a build machine
    import matplotlib.pyplot as plt  # after the backend choice

    phases = result.get("phases") or {}
    curves = {
        (key, label): phases[key]["curve"]
        for key, label in (("create", "operator"), ("floor", "floor (direct script)"))
        if key in phases and phases[key].get("curve")
    }
    if not curves:
        return False
    params = result["parameters"]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for (key, label), curve in curves.items():
        xs = [0.0] + [point[0] for point in curve]
        ys = [0] + [point[1] for point in curve]
        (line,) = ax.step(xs, ys, where="post", label=f"{label}: all Ready after {xs[-1]:.1f} s")
        # Where the driver finished creating: Ready before that line overlapped with applying.
        applied = phases[key].get("apply_seconds")
        if applied:
            ax.axvline(applied, color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("seconds since the first create (dotted: all objects created)")
    ax.set_ylabel("ConnectorInstances Ready")
    ratio = (phases.get("create") or {}).get("ratio_to_floor")
    title = (
        f"Ready over time, N={params['n']}, {params['namespaces']} namespaces, "
        f"{params['latency_ms']} ms latency"
    )
    ax.set_title(title + (f" (ratio {ratio:g})" if ratio else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    caption = textwrap.fill(
        f"{result['command']}  [{result['started_at']}, commit {result['environment'].get('commit')}]", 120
    )
    fig.text(0.01, 0.01, caption, fontsize=7, family="monospace", va="bottom")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return True
