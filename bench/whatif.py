"""What-if runs: the operator with monkeypatches that emulate suggested fixes, to size their effect.

`python -m bench.run ... --whatif sniffio,aiohttp_platform` starts the operator as
`python -m bench.whatif -m connector_operator run ...` with `BENCH_WHATIF` naming the patches.
This changes nothing in the operator package; it is a measuring device for the report, not a
fix, and only the benchmark's happy path is emulated faithfully:

- `hide_kubernetes`: the `kubernetes` package cannot be imported, as in an image built from
  `requirements-runtime.lock`. The development venv has it (the tests use it), and kopf imports
  it whenever it is installed, which raises the operator's memory; the operator itself never
  imports it.
- `sniffio`: a stub `sniffio` module, as if the dependency were installed. httpcore (under the
  platform client's httpx) imports it on every request state change and, when it is missing,
  searches the whole path each time.
- `aiohttp_platform`: Open Connectors calls (`openconnectors/client.py` `InstancesClient`) over
  aiohttp instead of httpx, with the same semaphore and pool size; errors are mapped by status
  only, and the client's metrics observer and per-call log lines are skipped.
- `no_lookup`: no `GET /instances?tags[]=` before the create. Unsafe as such (it is the crash
  guard, and deletion's tag search is skipped too, which the benchmark never exercises); it sizes
  what a create-intent marker, looked up only after a crash, would save.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

# Applied in this order, whatever order they are given in: hiding `kubernetes` must come before
# anything imports kopf (which imports it when it can).
TOGGLES = ("hide_kubernetes", "sniffio", "aiohttp_platform", "no_lookup")
ENV = "BENCH_WHATIF"


def _stub_sniffio() -> None:
    module = types.ModuleType("sniffio")
    module.current_async_library = lambda: "asyncio"  # type: ignore[attr-defined]
    sys.modules["sniffio"] = module


def _aiohttp_platform() -> None:
    from connector_operator.openconnectors import client, errors

    async def call(
        self: client.InstancesClient,
        method: str,
        api_url: str,
        path: str,
        credentials: client.Credentials,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str | int] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> tuple[Any, Any]:
        session: aiohttp.ClientSession | None = getattr(self, "_whatif_session", None)
        if session is None:
            limit = self._http._transport._pool._max_connections  # type: ignore[attr-defined]
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit), timeout=aiohttp.ClientTimeout(total=30)
            )
            self._whatif_session = session  # type: ignore[attr-defined]
        query = {k: str(v) for k, v in (params or {}).items()}
        headers = {"Authorization": credentials.header(), "Accept": "application/json"}
        async with (
            self._slots,
            session.request(
                method, api_url.rstrip("/") + path, json=body, params=query, headers=headers
            ) as r,
        ):
            raw = await r.read()
            status, response_headers = r.status, r.headers
        if 200 <= status < 300:
            return (json.loads(raw) if raw else None), response_headers
        raise errors.error_for(status, f"HTTP {status}", None, None)

    client.InstancesClient._call_with_headers = call  # type: ignore[method-assign]


def _no_lookup() -> None:
    from connector_operator.openconnectors import client

    async def find_by_tag(self: client.InstancesClient, *args: Any, **kwargs: Any) -> list[client.Instance]:
        return []

    client.InstancesClient.find_by_tag = find_by_tag  # type: ignore[method-assign]


def _hide_kubernetes() -> None:
    # A None entry in sys.modules makes every `import kubernetes...` raise ImportError.
    sys.modules["kubernetes"] = None  # type: ignore[assignment]


PATCHES: dict[str, Callable[[], None]] = {
    "sniffio": _stub_sniffio,
    "aiohttp_platform": _aiohttp_platform,
    "no_lookup": _no_lookup,
    "hide_kubernetes": _hide_kubernetes,
}


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        raise SystemExit(f"usage: {ENV}=toggle,... python -m bench.whatif -m MODULE [ARGS...]")
    wanted = set(filter(None, os.environ.get(ENV, "").split(",")))
    for name in (toggle for toggle in TOGGLES if toggle in wanted):
        PATCHES[name]()
        print(f"bench.whatif: applied {name}", file=sys.stderr, flush=True)
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
