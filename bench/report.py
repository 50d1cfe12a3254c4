"""Result files: `latest.json` (everything, machine-readable), `latest.md` (tables), and the targets.

A copy of the JSON is kept per N (`n<N>.json`), so the memory figures at N = 100 and N = 1,000
can be shown side by side; every table says which command produced it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MB_PER_MIB = 1.048576
# Issue 13's targets, as the image runs (bench/runtime_env.py).
PEAK_RSS_TARGET_MB = 150.0
IDLE_RSS_TARGET_MB = 120.0
NOISE_TOLERANCE_MIB = 5.0  # RSS moves by a few MiB between two starts of the same operator


def _get(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _row(
    name: str, target: str, value: Any, met: Callable[[Any], bool], unit: str = "", *, applies: bool = True
) -> dict[str, Any]:
    """`met` is None when there is no value, or when the target is not stated for this run's N."""
    return {
        "name": name,
        "target": target,
        "value": value,
        "unit": unit,
        "met": None if value is None or not applies else bool(met(value)),
    }


def targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    phases = result.get("phases") or {}
    n = result["parameters"]["n"]
    short = _get(phases, "steady.short_resync")
    idle_writes = None if short is None else short["kubernetes_writes"] + short["openconnectors_writes"]
    restart = phases.get("restart")
    restart_writes = (
        None if restart is None else restart["kubernetes_writes"] + restart["openconnectors_writes"]
    )
    peak = _get(phases, "create.memory_after_create.peak_rss_mib")
    peak_mb = None if peak is None else round(peak * MB_PER_MIB, 1)
    settled = _get(phases, "restart.memory_at_settled.rss_mib")
    settled_mb = None if settled is None else round(settled * MB_PER_MIB, 1)
    noise = _get(phases, "memory.unrelated_secrets")
    calls = _get(phases, "create.openconnectors_calls_per_object") or None
    others = None if calls is None else round(sum(v for k, v in calls.items() if k != "POST /instances"), 3)
    return [
        _row(
            "time to all Ready / floor",
            "<= 2.0 (at N=1000)",
            _get(phases, "create.ratio_to_floor"),
            lambda v: v <= 2.0,
            "x",
            applies=n >= 1000,
        ),
        _row(
            "Open Connectors POSTs per object created",
            "exactly 1",
            _get(phases, "create.openconnectors_posts_per_object"),
            lambda v: v == 1,
        ),
        _row("other Open Connectors calls per object created", "0", others, lambda v: v == 0),
        _row(
            "Kubernetes writes per object created, Events excluded",
            "<= 3",
            _get(phases, "create.kubernetes_writes_per_object_without_events"),
            lambda v: v <= 3,
        ),
        _row("writes (both sides) in an idle window, short resync", "0", idle_writes, lambda v: v == 0),
        _row("writes (both sides) on restart", "0", restart_writes, lambda v: v == 0),
        _row(
            "Secret churn: slowest change to reach the platform",
            "<= 10 s",
            _get(phases, "churn.latency_seconds.max"),
            lambda v: v <= 10,
            "s",
        ),
        _row(
            f"operator peak RSS while creating {n}",
            f"< {PEAK_RSS_TARGET_MB:g} MB at N=1000",
            peak_mb,
            lambda v: v < PEAK_RSS_TARGET_MB,
            "MB",
            applies=n >= 1000,
        ),
        _row(
            f"operator RSS with {n} Ready and idle (settled after a restart)",
            f"< {IDLE_RSS_TARGET_MB:g} MB at N=1000",
            settled_mb,
            lambda v: v < IDLE_RSS_TARGET_MB,
            "MB",
            applies=n >= 1000,
        ),
        _row(
            f"RSS added by {noise} unrelated Secrets",
            f"~0 (<= {NOISE_TOLERANCE_MIB:g} MiB)",
            _get(phases, "memory.rss_delta_mib"),
            lambda v: v <= NOISE_TOLERANCE_MIB,
            "MiB",
        ),
    ]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _counts_table(title: str, counts: Mapping[str, Any] | None) -> list[str]:
    if not counts:
        return [f"{title}: none.", ""]
    return [f"{title}:", "", *_table(("call", "count"), list(counts.items())), ""]


def _header(result: Mapping[str, Any]) -> list[str]:
    p, env = result["parameters"], result["environment"]
    flags = " ".join(p["operator_args"]) or "(defaults)"
    lines = [
        f"# Benchmark results: N={p['n']}, {p['namespaces']} namespaces, latency {p['latency_ms']} ms",
        "",
        f"Command: `{result['command']}`  ",
        f"Started {result['started_at']}, took {result.get('duration_seconds', 0):.0f} s; commit "
        f"{env.get('commit')}; {env.get('cpus')} CPUs, load average at start {env.get('loadavg_start')}, "
        f"at end {env.get('loadavg_end')}; phases: {', '.join(p['phases'])}; operator flags: `{flags}`.",
        "",
    ]
    source = result.get("operator_source") or {}
    if source:
        lines += [
            f"Operator code: {source['ref']}"
            + (f" ({source['commit']})" if source.get("commit") not in (None, source["ref"]) else "")
            + f", source digest(s) {sorted({s['digest'] for s in source['digests_at_each_start']})}; "
            + (
                "run from the development venv (with the `kubernetes` package, which kopf imports)."
                if p.get("dev_venv", True)  # runs from before the option ran in the dev venv
                else "run from a venv of `requirements-runtime.lock` alone, as the image ships it."
            ),
            "",
        ]
    if source.get("changed_during_run"):
        lines += [
            "**Warning:** the operator's source changed during this run (someone edited the working "
            "tree); numbers of different phases may come from different code.",
            "",
        ]
    if p.get("whatif"):
        patches = ", ".join(p["whatif"])
        lines += [f"**What-if run** (operator monkeypatched, see bench/whatif.py): {patches}.", ""]
    if result.get("error"):
        lines += [f"**The run failed:** {result['error']}", ""]
    met = {True: "yes", False: "**no**", None: "n/a"}
    rows = [
        (t["name"], t["target"], f"{_fmt(t['value'])} {t['unit']}".strip(), met[t["met"]])
        for t in result.get("targets") or []
    ]
    return [*lines, "## Targets", "", *_table(("measure", "target", "value", "met"), rows), ""]


def _create(phases: Mapping[str, Any]) -> list[str]:
    c, floor = phases["create"], phases.get("floor") or {}
    rows = [
        ("floor", floor.get("seconds_to_all_ready"), floor.get("apply_seconds")),
        ("operator", c.get("seconds_to_all_ready"), c.get("apply_seconds")),
    ]
    return [
        "## Creation",
        "",
        *_table(("", "seconds to all Ready", "of which applying"), rows),
        "",
        f"Ratio operator / floor: **{_fmt(c.get('ratio_to_floor'))}**. Kubernetes writes per object: "
        f"{_fmt(c.get('kubernetes_writes_per_object'))} (without Events: "
        f"{_fmt(c.get('kubernetes_writes_per_object_without_events'))}).",
        "",
        *_counts_table(
            "Kubernetes API requests per object (operator)", c.get("kubernetes_requests_per_object")
        ),
        *_counts_table("Open Connectors calls per object", c.get("openconnectors_calls_per_object")),
        f"Operator memory (MiB) idle before: {c.get('memory_idle_before_create')}, "
        f"after creation: {c.get('memory_after_create')}.",
        "",
    ]


def _steady(phases: Mapping[str, Any]) -> list[str]:
    out = ["## Idle (steady state)", ""]
    for label, key in (("as started", "default_resync"), ("short resync", "short_resync")):
        w = phases["steady"][key]
        flags = " ".join(w["operator_args"]) or "defaults"
        out += [
            f"**{label}** (`{flags}`, {w['window_seconds']} s window, operator CPU "
            f"{w['operator_cpu_percent']} %)",
            "",
            *_counts_table("Kubernetes API, per minute", w["kubernetes_per_minute"]),
            *_counts_table("Open Connectors, per minute", w["openconnectors_per_minute"]),
        ]
    return out


def _restart(phases: Mapping[str, Any]) -> list[str]:
    r = phases["restart"]
    header = ("stop s", "to health s", "to settled s", "K8s writes", "OC writes", "memory MiB")
    row = (
        r["stop_seconds"],
        r["seconds_to_health"],
        r["seconds_to_settled"],
        r["kubernetes_writes"],
        r["openconnectors_writes"],
        r["memory_at_settled"],
    )
    return [
        "## Restart",
        "",
        f"Settled = {r['settled_definition']}.",
        "",
        *_table(header, [row]),
        "",
        *_counts_table("Kubernetes requests during the restart", r["raw"]["kubernetes"]["operator"]),
        *_counts_table("Open Connectors calls during the restart", r["raw"]["openconnectors"]),
    ]


def _churn(phases: Mapping[str, Any]) -> list[str]:
    ch = phases["churn"]
    return [
        "## Secret churn",
        "",
        f"{ch['changed_objects']} Secrets changed; all propagated {_fmt(ch['seconds_to_all_propagated'])} s "
        f"after the first update; latency per object (s) {ch['latency_seconds']} (poll "
        f"{ch['poll_interval_seconds']} s).",
        "",
        *_counts_table(
            "Kubernetes requests per changed object", ch["kubernetes_requests_per_changed_object"]
        ),
        *_counts_table(
            "Open Connectors calls per changed object", ch["openconnectors_calls_per_changed_object"]
        ),
    ]


def _memory(phases: Mapping[str, Any], others: list[Mapping[str, Any]]) -> list[str]:
    out = []
    if "memory" in phases:
        m = phases["memory"]
        out += [
            "## Memory",
            "",
            f"N={m['n']}, operator restarted and settled: without unrelated Secrets "
            f"{m['without']['memory']}; with {m['unrelated_secrets']} of them {m['with']['memory']}; "
            f"RSS delta {m['rss_delta_mib']} MiB.",
            "",
        ]
    rows = []
    for other in sorted(others, key=lambda r: int(r["parameters"]["n"])):
        ph = other.get("phases") or {}
        rows.append(
            (
                other["parameters"]["n"],
                _get(ph, "create.memory_after_create.peak_rss_mib"),
                _get(ph, "restart.memory_at_settled.rss_mib"),
                _get(ph, "memory.rss_delta_mib"),
                f"`{other['command']}` ({other['started_at']})",
            )
        )
    if rows:
        header = ("N", "peak RSS MiB (create)", "RSS MiB after restart", "+ unrelated Secrets MiB", "command")
        out += ["## Operator memory across runs (latest run per N)", "", *_table(header, rows), ""]
    return out


def markdown(result: Mapping[str, Any], others: list[Mapping[str, Any]]) -> str:
    phases = result.get("phases") or {}
    out = _header(result)
    sections = (("create", _create), ("steady", _steady), ("restart", _restart), ("churn", _churn))
    for name, render in sections:
        if name in phases:
            out += render(phases)
    out += _memory(phases, others)
    out += ["Figure: `ready-over-time.png` (same command).", ""]
    return "\n".join(out)


def write(results_dir: Path, result: dict[str, Any]) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, sort_keys=False) + "\n"
    (results_dir / "latest.json").write_text(text)
    (results_dir / f"n{result['parameters']['n']}.json").write_text(text)
    others = []
    for path in sorted(results_dir.glob("n*.json")):
        try:
            others.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    (results_dir / "latest.md").write_text(markdown(result, others))


def main() -> None:
    """`python -m bench.report [RESULTS_DIR]`: re-render the tables and the figure from latest.json."""
    from bench import plot

    results_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results"
    result = json.loads((results_dir / "latest.json").read_text())
    result["targets"] = targets(result)
    write(results_dir, result)
    plot.ready_over_time(result, results_dir / "ready-over-time.png")


if __name__ == "__main__":
    main()
