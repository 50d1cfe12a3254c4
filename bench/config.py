"""The benchmark's parameters: the command line, parsed into one frozen `BenchConfig`.

Every result file records these parameters and the exact command, so each number can be
reproduced. Phases run in a fixed order; `create` is the prerequisite of all later phases
(they need N Ready objects), and the ratio in `create` needs `floor`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.whatif import TOGGLES as WHATIF_TOGGLES

PHASES = ("floor", "create", "steady", "restart", "churn", "memory")
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_MAX_IN_FLIGHT = 32  # the operator's own default (connector_operator.settings)


@dataclass(frozen=True)
class BenchConfig:
    n: int
    namespaces: int
    latency_ms: int
    operator_args: tuple[str, ...]
    phases: tuple[str, ...]
    steady_window: float
    short_resync: float
    churn_fraction: float
    unrelated_secrets: int
    apply_concurrency: int
    floor_concurrency: int
    ready_timeout: float
    quiet_seconds: float
    idle_cpu: float
    profile: str
    whatif: tuple[str, ...]
    operator_ref: str | None
    dev_venv: bool  # run the operator from the development venv, not the runtime-only one
    results_dir: Path
    work_dir: Path
    command: str

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["results_dir"], data["work_dir"] = str(self.results_dir), str(self.work_dir)
        data["operator_args"], data["phases"] = list(self.operator_args), list(self.phases)
        data["whatif"] = list(self.whatif)
        return data


def _max_in_flight(operator_args: list[str]) -> int:
    """The operator's effective --max-in-flight (last one wins, as in click), for the floor."""
    value = DEFAULT_MAX_IN_FLIGHT
    for i, arg in enumerate(operator_args):
        if arg.startswith("--max-in-flight="):
            value = int(arg.split("=", 1)[1])
        elif arg == "--max-in-flight" and i + 1 < len(operator_args):
            value = int(operator_args[i + 1])
    return value


def _command(argv: list[str], args: argparse.Namespace) -> str:
    """The command as a reader would type it again: `make bench ...` when make started us."""
    make_prefix = [
        "--n",
        str(args.n),
        "--namespaces",
        str(args.namespaces),
        "--latency-ms",
        str(args.latency_ms),
    ]
    if os.environ.get("MAKELEVEL") and argv[:6] == make_prefix:
        extra = f" BENCH_ARGS={shlex.quote(shlex.join(argv[6:]))}" if argv[6:] else ""
        return f"make bench N={args.n} NAMESPACES={args.namespaces} LATENCY_MS={args.latency_ms}{extra}"
    return shlex.join(["python", "-m", "bench.run", *argv])


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="ConnectorInstance objects (default 1000)")
    parser.add_argument("--namespaces", type=int, default=10, help="namespaces they spread over")
    parser.add_argument("--latency-ms", type=int, default=50, help="simulator latency per API call")
    parser.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra operator flag, repeatable; write it with '=': --operator-arg=--max-in-flight=64",
    )
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}"
    )
    parser.add_argument("--steady-window", type=float, default=60.0, help="idle measurement window, s")
    parser.add_argument(
        "--short-resync", type=float, default=60.0, help="--resync-interval of the 2nd window"
    )
    parser.add_argument("--churn-fraction", type=float, default=0.1, help="objects whose Secret changes")
    parser.add_argument("--unrelated-secrets", type=int, default=5000, help="noise Secrets for `memory`")
    parser.add_argument("--apply-concurrency", type=int, default=32, help="concurrent creates by the driver")
    parser.add_argument(
        "--floor-concurrency", type=int, default=None, help="default: the operator's --max-in-flight"
    )
    parser.add_argument("--ready-timeout", type=float, default=None, help="default: 120 s + 0.5 s per object")
    parser.add_argument("--quiet-seconds", type=float, default=3.0, help="idle span that counts as settled")
    parser.add_argument(
        "--idle-cpu", type=float, default=0.2, help="operator CPU (cores) below which it counts as idle"
    )
    parser.add_argument(
        "--profile",
        choices=("none", "py-spy", "pyinstrument", "tracemalloc", "apiserver"),
        default="none",
        help="profile the operator: py-spy (speedscope file of `create`), pyinstrument (text call tree "
        "of the first operator, written when it exits), tracemalloc (allocation sites after `create` and "
        "after each restart), apiserver (Go CPU profiles of kube-apiserver during `floor` and `create`, "
        "15 s each from the first create); a diagnostic run, its timings are not results",
    )
    parser.add_argument(
        "--whatif",
        default="",
        help=f"diagnostic: run the operator with monkeypatches emulating fixes, comma-separated subset of "
        f"{','.join(WHATIF_TOGGLES)} (see bench/whatif.py)",
    )
    parser.add_argument(
        "--operator-ref",
        default=None,
        help="run the operator from this git commit (exported with git archive) instead of the working "
        "tree, e.g. HEAD: other people's edits during the run cannot leak into it",
    )
    parser.add_argument(
        "--dev-venv",
        action="store_true",
        help="run the operator from the development venv (with the kubernetes package kopf then "
        "imports) instead of a venv of requirements-runtime.lock alone, as the image ships it; "
        "implied by --whatif and by a profiler that wraps the operator",
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / ".work", help="logs and state")
    args = parser.parse_args(argv)
    phases = tuple(p for p in PHASES if p in {x.strip() for x in args.phases.split(",") if x.strip()})
    unknown = {x.strip() for x in args.phases.split(",") if x.strip()} - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if any(p in phases for p in PHASES[2:]) and "create" not in phases:
        parser.error("steady, restart, churn and memory need the `create` phase (N Ready objects)")
    whatif = tuple(t.strip() for t in args.whatif.split(",") if t.strip())
    if set(whatif) - set(WHATIF_TOGGLES):
        parser.error(f"unknown --whatif toggle(s): {', '.join(sorted(set(whatif) - set(WHATIF_TOGGLES)))}")
    if whatif and args.profile in ("pyinstrument", "tracemalloc"):
        parser.error("--whatif cannot be combined with a profiler that wraps the operator (use py-spy)")
    if args.n < 1 or args.namespaces < 1:
        parser.error("--n and --namespaces must be positive")
    command = _command(list(sys.argv[1:] if argv is None else argv), args)
    return BenchConfig(
        n=args.n,
        namespaces=args.namespaces,
        latency_ms=args.latency_ms,
        operator_args=tuple(args.operator_arg),
        phases=phases,
        steady_window=args.steady_window,
        short_resync=args.short_resync,
        churn_fraction=args.churn_fraction,
        unrelated_secrets=args.unrelated_secrets,
        apply_concurrency=args.apply_concurrency,
        floor_concurrency=args.floor_concurrency or _max_in_flight(args.operator_arg),
        ready_timeout=args.ready_timeout or 120.0 + 0.5 * args.n,
        quiet_seconds=args.quiet_seconds,
        idle_cpu=args.idle_cpu,
        profile=args.profile,
        whatif=whatif,
        operator_ref=args.operator_ref,
        dev_venv=args.dev_venv or bool(whatif) or args.profile in ("pyinstrument", "tracemalloc"),
        results_dir=args.results_dir,
        work_dir=args.work_dir,
        command=command,
    )
