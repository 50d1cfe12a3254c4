"""Starting and stopping the simulator's HTTP listener.

Shared by the CLI (a separate process, what the test fixtures use) and by anyone who wants the
simulator inside their own event loop; both need the real bound port when asked for port 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from open_connectors_simulator.app import create_app
from open_connectors_simulator.settings import SimulatorSettings

# In-flight requests get this long to finish on shutdown; the simulator holds nothing worth more.
SHUTDOWN_TIMEOUT_SECONDS = 2.0


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def run_simulator(
    settings: SimulatorSettings, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve until the block exits; yields the root URL (`http://host:port`, no base path)."""
    runner = web.AppRunner(
        create_app(settings),
        access_log=None,  # the app logs one line per request itself, without headers
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        yield _url(host, int(bound[1]))
    finally:
        await runner.cleanup()
