"""What-if runs: the operator with monkeypatches that emulate suggested fixes, to size their effect.

`python -m bench.run ... --whatif sniffio,trust_env,inline_sync_handlers` starts the operator as
`python -m bench.whatif -m connector_operator run ...` with `BENCH_WHATIF` naming the patches.
This changes nothing in the operator package; it is a measuring device for the report, not a
fix, and only the benchmark's happy path is emulated faithfully:

- `sniffio`: a stub `sniffio` module, as if the dependency were installed. httpcore imports it on
  every request state change and, when it is missing, searches the whole path each time.
- `trust_env`: aiohttp sessions without `trust_env`. kubernetes.aio hard-codes `trust_env=True`,
  which costs two thread-pool hops per request (netrc file read, proxy environment look-up).
- `inline_sync_handlers`: kopf's executor for sync handlers runs them inline, as if the four
  watch handlers (`instance_changed`, `secret_changed`, `secret_cache`, `secret_users`) were
  `async def`: they do no I/O, so a thread hop per watch event buys nothing.
- `aiohttp_platform`: Open Connectors calls over aiohttp instead of httpx (same semaphore, same
  pool size); errors are mapped by status only.
- `aiohttp_kube`: the operator's own Kubernetes calls (`kube/api.py` `KubeAPI.request`, since
  61c53dd over httpx) over aiohttp with the same base URL, headers and TLS context.
- `no_lookup`: no `GET /instances?tags[]=` before the create. Unsafe as such (it is the crash
  guard); it sizes what a create-intent marker, looked up only after a crash, would save.
- `hide_kubernetes`: the `kubernetes` package cannot be imported, as in an image built from
  `requirements-runtime.lock`. The development venv has it (tests use it), and kopf imports it
  whenever it is installed; only for an operator that no longer imports it itself.
"""

from __future__ import annotations

import concurrent.futures
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
TOGGLES = (
    "hide_kubernetes",
    "sniffio",
    "trust_env",
    "inline_sync_handlers",
    "aiohttp_platform",
    "aiohttp_kube",
    "no_lookup",
)
ENV = "BENCH_WHATIF"


class InlineExecutor(concurrent.futures.Executor):
    """Runs the callable at once in the calling thread; returns a finished future."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


def _stub_sniffio() -> None:
    module = types.ModuleType("sniffio")
    module.current_async_library = lambda: "asyncio"  # type: ignore[attr-defined]
    sys.modules["sniffio"] = module


def _no_trust_env() -> None:
    original = aiohttp.ClientSession.__init__

    def init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        kwargs["trust_env"] = False
        original(self, *args, **kwargs)

    aiohttp.ClientSession.__init__ = init  # type: ignore[method-assign]


def _inline_sync_handlers() -> None:
    import kopf

    @kopf.on.startup()
    def use_inline_executor(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.execution.executor = InlineExecutor()


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


def _aiohttp_kube() -> None:
    from connector_operator.kube import api  # exists from 61c53dd on

    async def request(
        self: Any,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        session: aiohttp.ClientSession | None = getattr(self, "_whatif_session", None)
        if session is None:
            client = await self._connect()  # the httpx client: base URL, credentials, TLS context
            session = aiohttp.ClientSession(
                base_url=str(client.base_url).rstrip("/"),
                headers={k: v for k, v in client.headers.items() if k.lower() in ("authorization", "accept")},
                connector=aiohttp.TCPConnector(ssl=client._transport._pool._ssl_context, limit=100),
                timeout=aiohttp.ClientTimeout(total=30),
            )
            self._whatif_session = session
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        async with session.request(method, path, data=data, params=params, headers=headers) as response:
            raw, status, reason = await response.read(), response.status, response.reason or ""
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise api.KubeError(status, reason)
        result: dict[str, Any] = json.loads(raw) if raw else {}
        return result

    api.KubeAPI.request = request  # type: ignore[method-assign]


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
    "trust_env": _no_trust_env,
    "inline_sync_handlers": _inline_sync_handlers,
    "aiohttp_platform": _aiohttp_platform,
    "aiohttp_kube": _aiohttp_kube,
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
