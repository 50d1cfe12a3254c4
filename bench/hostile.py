"""`make bench-hostile SCENARIO=templates|bigspecs` (`python -m bench.hostile SCENARIO`): one tenant's
worst within the CRD's limits, and what it costs everyone else (issue 20, tenant-findings N2, N3).

- `templates` (N2): `--objects` (20) ConnectorInstances in namespace `hostile-a`, each with 16 token
  Secret templates of 4 KiB (`--keys`) of the costliest shape the operator's caps allow: one `~`
  chain of MAX_NODES parts (about 35 ms to compile each), under a comment that makes every source
  distinct, so that no cache can share them; `resyncInterval: 30s`. For `--window` seconds (120)
  the operator's CPU time is taken from /proc/<pid>/stat and /healthz is timed every second;
  meanwhile an object is created in namespace `hostile-b` every 15 s and the seconds until it is
  Ready are reported (a baseline one is made before the hostile objects). `--shape findings` uses
  the findings' own template instead (a 4 KiB `~token` chain, over MAX_NODES today).
- `bigspecs` (N3): `--objects` (300) ConnectorInstances in `hostile-a` with the maximal valid spec of
  tenant-findings R-N3 (about 1 MB: 200 literal values, 32 annotations and 16 templates of 4 KiB,
  50 tags), created with POST as `kubectl create` does (kubectl apply's annotation would not fit).
  Their own credentials Secret lets each pass go as far as it can (the configuration is over the
  operator's 512 KiB: InvalidSpec). Reports the operator's RSS and peak RSS (VmHWM) once all are
  handled and it is idle, then after a restart, against the chart's memory limit.

Like `bench.run`, it starts a real control plane, the simulator (no latency) and the operator as a
real process from the runtime-only venv (the working tree, or `--operator-ref REF`: `git archive`),
and stops them all at the end, also on failure. Results: `bench/results/hostile-<scenario>.json`
and `.md`; logs in `bench/.work/hostile/`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.kube import CI_API, KubeClient, KubeError, ci_path
from bench.processes import (
    ORGANIZATION_SECRET,
    USER_SECRET,
    Operator,
    cpu_seconds,
    memory_kib,
    start_operator,
    start_simulator,
)
from bench.runtime_env import runtime_python
from bench.source import ROOT, OperatorSource, prepare
from bench.workload import ACCOUNT_SECRET, CONFIG_KEY, SHARED_CONFIG_SECRET, bounded, install_crd
from connector_operator.api.names import GROUP, KIND, PLURAL, VERSION
from connector_operator.domain.template import MAX_NODES, MAX_TEMPLATE
from hack.controlplane import cluster

HOSTILE, VICTIMS = "hostile-a", "hostile-b"
VALUES = ROOT / "charts" / "open-connectors-operator" / "values.yaml"
VICTIM_EVERY = 15.0  # seconds between the victims' creations in `templates`
READY_TIMEOUT = 300.0
POLL = 0.05  # seconds between looks at a victim (the deadline is the synchronisation)
IDLE_CPU, IDLE_SECONDS = 0.05, 5.0  # settled: under 5 % of a core for 5 s
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- what the tenants apply ------------------------------------------------------------------------


def instance(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}


def plain_spec(**fields: Any) -> dict[str, Any]:
    """A Close.io instance on the namespace's own credentials and shared configuration Secret."""
    username = {"secretKeyRef": {"name": SHARED_CONFIG_SECRET, "key": CONFIG_KEY}}
    return {
        "connectorKey": "closeio",
        "credentialsSecretRef": {"name": ACCOUNT_SECRET},
        "configuration": [{"key": "username", "valueFrom": username}],
        **fields,
    }


def costly_template(i: int, k: int, shape: str) -> str:
    """A template of MAX_TEMPLATE characters, distinct per object and key (`i`, `k`)."""
    if shape == "findings":  # tenant-findings R-N2's own: a `~token` chain as long as fits
        tag, head, tail, unit = f"{{# {i}-{k} #}}", "{{ token", " }}", "~token"
        return tag + head + unit * ((MAX_TEMPLATE - len(tag) - len(head) - len(tail)) // len(unit)) + tail
    # Template, Output and Concat are three parts of MAX_NODES: the rest are operands.
    chain = "{{ " + "~".join(["token"] * (MAX_NODES - 2)) + " }}"
    tag = f"{{# {i}-{k} "
    return tag + "x" * (MAX_TEMPLATE - len(tag) - len(chain) - 3) + " #}" + chain


def templates_spec(i: int, keys: int, shape: str) -> dict[str, Any]:
    data = {f"k{k}": costly_template(i, k, shape) for k in range(keys)}
    return plain_spec(resyncInterval="30s", tokenSecret={"template": {"data": data}})


def maximal_spec() -> dict[str, Any]:
    """tenant-findings R-N3's spec, on the namespace's own credentials Secret."""
    return plain_spec(
        instanceName="x" * 200,
        tags=[f"t{i:03d}" + "y" * 96 for i in range(50)],
        configuration=[{"key": f"k{i:03d}", "value": "v" * 4096} for i in range(200)],
        tokenSecret={
            "annotations": {f"a{i}": "z" * 4096 for i in range(32)},
            "template": {"data": {f"k{i}": "t" * 4096 for i in range(16)}},
        },
    )


# -- the processes and the measures -----------------------------------------------------------------


@dataclass
class Scene:
    args: argparse.Namespace
    plane: cluster.ControlPlane
    kube: KubeClient
    api_url: str
    source: OperatorSource
    operator: Operator | None = None
    starts: int = 0
    http: aiohttp.ClientSession = field(default_factory=aiohttp.ClientSession)

    async def start_operator(self) -> Operator:
        self.starts += 1
        python = sys.executable if self.args.dev_venv else str(runtime_python(self.args.venv_dir))
        code = self.source.python_path or (None if self.args.dev_venv else ROOT / "operator")
        paths = [str(code or ""), str(ROOT) if self.args.tracemalloc else "", os.environ.get("PYTHONPATH")]
        env = {"PYTHONPATH": os.pathsep.join(filter(None, paths))}
        # A diagnostic, not a result (tracing costs time and memory): bench.memprobe, dumped by `dump`.
        wrapper = ["-m", "bench.memprobe", str(self.dump_path)] if self.args.tracemalloc else None
        self.source.record_start(str(self.starts), time.monotonic() - STARTED)
        self.operator = await start_operator(
            work_dir=self.args.work_dir,
            kubeconfig=self.plane.kubeconfig,
            namespaces=[HOSTILE, VICTIMS],
            api_url=self.api_url,
            args=[],
            label=str(self.starts),
            env=env,
            python=python,
            wrapper=wrapper,
        )
        return self.operator

    @property
    def dump_path(self) -> Path:
        return Path(self.args.work_dir) / f"tracemalloc-{self.starts}.txt"

    async def dump(self, label: str) -> str | None:
        """With --tracemalloc: the operator's live allocations now, copied to the results."""
        if not self.args.tracemalloc or self.operator is None:
            return None
        path = self.dump_path
        path.unlink(missing_ok=True)
        self.operator.child.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists():
                break
            await asyncio.sleep(0.5)  # polling for the file; the deadline is the synchronisation
        target = self.args.results_dir / "profiles" / f"hostile-{self.args.scenario}-{label}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        return str(target)

    async def stop_operator(self) -> None:
        if self.operator is not None:
            operator, self.operator = self.operator, None
            await operator.child.stop_async()

    @property
    def pid(self) -> int:
        assert self.operator is not None
        return self.operator.child.pid

    def memory(self) -> dict[str, float]:
        kib = memory_kib(self.pid)
        return {
            "rss_mib": round(kib.get("VmRSS", 0) / 1024, 1),
            "peak_rss_mib": round(kib.get("VmHWM", 0) / 1024, 1),
        }

    async def settle(self, timeout: float = 600.0) -> float:
        """Wait until the operator's CPU stays under IDLE_CPU for IDLE_SECONDS; the seconds waited."""
        started = time.monotonic()
        quiet_since, before = started, cpu_seconds(self.pid)
        while time.monotonic() - started < timeout:
            await asyncio.sleep(0.5)  # sampling interval
            now, cpu = time.monotonic(), cpu_seconds(self.pid)
            if (cpu - before) / 0.5 > IDLE_CPU:
                quiet_since = now
            elif now - quiet_since >= IDLE_SECONDS:
                break
            before = cpu
        return round(time.monotonic() - started, 1)

    async def ready_after(self, name: str, started: float) -> float | None:
        """Seconds from `started` until the victim `name` is Ready (None: not within READY_TIMEOUT)."""
        while time.monotonic() - started < READY_TIMEOUT:
            obj = await self.kube.call("GET", ci_path(VICTIMS, name), ("GET", PLURAL), allowed=(200, 404))
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                return round(time.monotonic() - started, 2)
            await asyncio.sleep(POLL)
        return None

    async def victim(self, name: str) -> float | None:
        started = time.monotonic()
        await self.kube.create_instance(VICTIMS, instance(name, plain_spec()))
        return await self.ready_after(name, started)

    async def healthz(self, stop: asyncio.Event, latencies: list[float]) -> None:
        """/healthz every second: how long the operator's event loop takes to answer."""
        assert self.operator is not None
        url = self.operator.health_url
        while not stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
                    await response.read()
            latencies.append(time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)  # the sampling interval, or the end

    async def verdicts(self) -> dict[str, int]:
        """How many of the hostile objects are at which Ready reason (the server's Table: no bodies)."""
        # resourceVersion=0: from the API server's cache, not a read of every big object from etcd.
        path = f"{CI_API}/namespaces/{HOSTILE}/{PLURAL}?resourceVersion=0"
        rows = await self.kube.table(path, ("LIST", PLURAL))
        counts: dict[str, int] = {}
        for row in rows:
            ready, reason = row["cells"][1], row["cells"][2]
            key = f"{ready}/{reason}" if reason else "unhandled"
            counts[key] = counts.get(key, 0) + 1
        return counts


async def prepare_namespaces(kube: KubeClient) -> None:
    for namespace in (HOSTILE, VICTIMS):
        await kube.create_namespace(namespace)
        account = {"userSecret": USER_SECRET, "organizationSecret": ORGANIZATION_SECRET}
        await kube.create_secret(namespace, ACCOUNT_SECRET, account)
        await kube.create_secret(namespace, SHARED_CONFIG_SECRET, {CONFIG_KEY: "shared-closeio-key"})


# -- the scenarios ------------------------------------------------------------------------------------


async def templates(scene: Scene) -> dict[str, Any]:
    args = scene.args
    await scene.start_operator()
    baseline = await scene.victim("victim-baseline")
    say(f"baseline victim Ready after {baseline}s; creating {args.objects} hostile objects")
    stop, latencies = asyncio.Event(), list[float]()
    sampler = asyncio.create_task(scene.healthz(stop, latencies))
    window_start, cpu_start = time.monotonic(), cpu_seconds(scene.pid)
    bodies = [instance(f"cpu-{i}", templates_spec(i, args.keys, args.shape)) for i in range(args.objects)]
    await bounded(args.objects, bodies, lambda body: scene.kube.create_instance(HOSTILE, body))
    victims: list[asyncio.Task[float | None]] = []
    for k in range(int(args.window // VICTIM_EVERY)):
        await asyncio.sleep(max(0.0, window_start + 5 + k * VICTIM_EVERY - time.monotonic()))  # schedule
        victims.append(asyncio.create_task(scene.victim(f"victim-{k}")))
    await asyncio.sleep(max(0.0, window_start + args.window - time.monotonic()))  # the window itself
    cpu = cpu_seconds(scene.pid) - cpu_start
    window = time.monotonic() - window_start
    stop.set()
    await sampler
    ready = list(await asyncio.gather(*victims))
    times = [t for t in ready if t is not None]
    return {
        "template_bytes": len(costly_template(0, 0, args.shape)),
        "window_seconds": round(window, 1),
        "operator_cpu_seconds": round(cpu, 2),
        "operator_cpu_percent": round(100 * cpu / window, 1),
        "victim_baseline_seconds_to_ready": baseline,
        "victims_seconds_to_ready": ready,
        "victims_max_seconds_to_ready": max(times) if times else None,
        "victims_median_seconds_to_ready": round(statistics.median(times), 2) if times else None,
        "healthz_max_seconds": round(max(latencies), 3) if latencies else None,
        "healthz_over_1s": len([t for t in latencies if t > 1.0]),
        "hostile_objects_by_ready_reason": await scene.verdicts(),
        "memory": scene.memory(),
    }


async def handled(scene: Scene, count: int, timeout: float) -> float:
    """Wait until all `count` hostile objects have a Ready reason; the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            verdicts = await scene.verdicts()
        except KubeError as error:  # a loaded API server's 504: look again
            say(f"listing failed: {error}")
            verdicts = {}
        if sum(verdicts.values()) == count and "unhandled" not in verdicts:
            break
        await asyncio.sleep(1.0)  # polling interval; the deadline is the synchronisation
    return round(time.monotonic() - started, 1)


async def bigspecs(scene: Scene) -> dict[str, Any]:
    args = scene.args
    await scene.start_operator()
    await scene.settle()
    idle = scene.memory()
    say(
        f"operator idle at {idle}; creating {args.objects} objects of {len(json.dumps(maximal_spec()))} bytes"
    )
    spec = maximal_spec()
    created = time.monotonic()
    await bounded(
        4, range(args.objects), lambda i: scene.kube.create_instance(HOSTILE, instance(f"big-{i}", spec))
    )
    create_seconds = round(time.monotonic() - created, 1)
    handled_seconds = await handled(scene, args.objects, READY_TIMEOUT)
    await scene.settle()
    at_rest = scene.memory()
    profiles = [await scene.dump("after-objects")]
    verdicts = await scene.verdicts()
    say(f"after the objects: {at_rest} {verdicts}; restarting the operator")
    await scene.stop_operator()
    restarted = time.monotonic()
    await scene.start_operator()
    await scene.settle()
    after_restart = scene.memory()
    profiles.append(await scene.dump("after-restart"))
    say(f"after the restart: {after_restart}")
    return {
        "spec_bytes": len(json.dumps(spec, separators=(",", ":"))),
        "memory_idle_before": idle,
        "seconds_to_create": create_seconds,
        "seconds_until_all_handled": handled_seconds,
        "memory_after_objects": at_rest,
        "hostile_objects_by_ready_reason": verdicts,
        "memory_after_restart": after_restart,
        "seconds_restart_to_idle": round(time.monotonic() - restarted, 1),
        "chart_memory_limit": chart_memory_limit(),
        "tracemalloc": [p for p in profiles if p],
    }


def chart_memory_limit() -> str:
    values = yaml.safe_load(VALUES.read_text())
    return str(values["resources"]["limits"]["memory"])


SCENARIOS = {"templates": templates, "bigspecs": bigspecs}
DEFAULT_OBJECTS = {"templates": 20, "bigspecs": 300}


# -- the run ------------------------------------------------------------------------------------------


async def run(
    args: argparse.Namespace, plane: cluster.ControlPlane, result: dict[str, Any], source: OperatorSource
) -> None:
    simulator = await start_simulator(args.work_dir, 0)
    kube = KubeClient(plane.server, plane.admin_token, plane.ca_file)
    scene = Scene(args, plane, kube, simulator.api_url, source)
    try:
        await install_crd(kube)
        await prepare_namespaces(kube)
        result["measures"] = await SCENARIOS[args.scenario](scene)
    finally:
        await scene.stop_operator()
        await scene.http.close()
        await kube.close()
        await simulator.child.stop_async()


def render(result: dict[str, Any]) -> str:
    lines = [
        f"# hostile {result['parameters']['scenario']}",
        "",
        f"`{result['command']}` at {result['commit']}, {result['started']}, load {result['load_average']}",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {json.dumps(value)} |" for key, value in (result.get("measures") or {}).items()]
    if result.get("error"):
        lines += ["", "```", result["error"], "```"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--objects", type=int, help="hostile objects (templates: 20, bigspecs: 300)")
    parser.add_argument("--keys", type=int, default=16, help="templates per object (templates)")
    parser.add_argument("--shape", choices=("chain", "findings"), default="chain", help="template shape")
    parser.add_argument("--window", type=float, default=120.0, help="seconds measured (templates)")
    parser.add_argument("--operator-ref", help="run the operator from this git commit")
    parser.add_argument("--dev-venv", action="store_true", help="run the operator from .venv")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="dump the operator's allocations (bigspecs)"
    )
    parser.add_argument("--label", default="", help="added to the results' file names")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / ".work" / "hostile")
    parser.add_argument("--venv-dir", type=Path, default=ROOT / "bench" / ".work" / "venvs")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    args.objects = args.objects or DEFAULT_OBJECTS[args.scenario]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "operator"], capture_output=True, text=True).stdout
    result: dict[str, Any] = {
        "command": " ".join(["python -m bench.hostile", *(argv if argv is not None else sys.argv[1:])]),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit + ("+uncommitted operator changes" if dirty and not args.operator_ref else ""),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    shutil.rmtree(args.work_dir, ignore_errors=True)
    args.work_dir.mkdir(parents=True)
    source = OperatorSource(None, None, None)
    try:
        source = prepare(args.operator_ref, args.work_dir)
        with cluster.running(args.work_dir / "controlplane") as plane:
            asyncio.run(run(args, plane, result, source))
    except BaseException as error:  # written with the partial results, then re-raised below
        result["error"] = "".join(traceback.format_exception(error))[-4000:]
        if not isinstance(error, Exception):
            raise
    finally:
        result["operator_source"] = source.to_json()
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stem = args.results_dir / f"hostile-{args.scenario}{'-' + args.label if args.label else ''}"
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        stem.with_suffix(".md").write_text(render(result))
        print(render(result))
    return 1 if result.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
