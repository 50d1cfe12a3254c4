"""The platform client's HTTP transport, measured side by side: httpx's own against aiohttp's.

`python -m bench.transports [--calls 3000] [--rounds 3]` starts the simulator (no added latency:
what is measured is the client's own CPU), then runs the operator's `InstancesClient` with each
transport in turn, round after round, each making `--calls` creates with 32 in flight, and
reports per transport the operator-side CPU seconds per 1,000 calls (this process's CPU: the
simulator is another process) and the wall time.

Measured on the 2-core machine, 2026-12-01 (`python -m bench.transports --calls 3000 --rounds 3`):
httpx's transport 2.477 s of client CPU per 1,000 calls, httpx + httpx-aiohttp 0.550 s; with the
client's own ClientSession (openconnectors/transport.py), 2.183 s against 0.459 s. So the client
uses the latter.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.processes import ORGANIZATION_SECRET, USER_SECRET, start_simulator
from connector_operator.openconnectors.client import Credentials, InstancesClient

IN_FLIGHT = 32
Make = Callable[[], httpx.AsyncBaseTransport | None]


def httpx_transport() -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    return httpx.AsyncHTTPTransport(limits=limits)


TRANSPORTS: dict[str, Make] = {
    "httpx (its own transport)": httpx_transport,
    "httpx + httpx-aiohttp (the client's own, openconnectors/transport.py)": lambda: None,
}


async def one_round(api_url: str, make: Make, calls: int) -> tuple[float, float]:
    client = InstancesClient(max_in_flight=IN_FLIGHT, max_in_flight_per_host=IN_FLIGHT, transport=make())
    credentials = Credentials(USER_SECRET, ORGANIZATION_SECRET)
    body = {"name": "bench", "element": {"key": "closeio"}, "tags": [], "configuration": {"username": "k"}}
    try:
        await client.create(api_url, credentials, body)  # connect and warm up outside the timing
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.gather(*(client.create(api_url, credentials, body) for _ in range(calls)))
        return time.process_time() - cpu, time.monotonic() - wall
    finally:
        await client.aclose()


async def main(calls: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        simulator = await start_simulator(Path(work), latency_ms=0)
        try:
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in TRANSPORTS}
            for _ in range(rounds):
                for name, make in TRANSPORTS.items():
                    results[name].append(await one_round(simulator.api_url, make, calls))
        finally:
            await simulator.child.stop_async()
    print(f"{calls} creates per round, {IN_FLIGHT} in flight, {rounds} rounds, medians:")
    print("| transport | client CPU s per 1,000 calls | wall s per 1,000 calls |")
    print("|---|---|---|")
    for name, runs in results.items():
        cpu = statistics.median(c for c, _ in runs) * 1000 / calls
        wall = statistics.median(w for _, w in runs) * 1000 / calls
        print(f"| {name} | {cpu:.3f} | {wall:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.transports", description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
