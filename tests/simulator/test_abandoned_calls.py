"""A call whose client went away after sending it still takes effect (issue 10).

A real platform completes a POST whose caller was killed once the request has arrived; the
operator's idempotency (adopting the instance by its identity tag) exists for exactly that case.
The simulator receives the body before its injected latency and shields the work from the
client's disconnect, so the case can be exercised: here the client sends a whole request and
closes its socket while the simulator is still in its latency.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.operator import wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.support import closeio_body


def send_and_disconnect(simulator: SimulatorHandle, method: str, path: str, body: dict[str, object]) -> None:
    """Send one whole HTTP request on a raw socket and close it without reading any answer."""
    url = urlsplit(simulator.api_url)
    payload = json.dumps(body).encode()
    head = (
        f"{method} {url.path}{path} HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        f"Authorization: {simulator.authorization}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    assert url.hostname is not None
    assert url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(head + payload)
        # An abortive close (RST), like a killed process's socket whose answer never came.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def answered(simulator: SimulatorHandle, method: str, route: str) -> list[int | None]:
    return [r["status"] for r in simulator.control.requests() if (r["method"], r["route"]) == (method, route)]


@pytest.mark.parametrize("latency_ms", [0, 500])
def test_a_post_whose_client_left_during_the_latency_still_creates_the_instance(
    simulator: SimulatorHandle, latency_ms: int
) -> None:
    simulator.control.set_latency(latency_ms)
    send_and_disconnect(simulator, "POST", "/instances", closeio_body(name="abandoned"))
    # The log entry gets its status once the work is done (the answer itself reaches nobody).
    wait_until(lambda: answered(simulator, "POST", "/instances") == [200], timeout=10, what="the POST done")
    [instance] = simulator.control.instances()
    assert instance["name"] == "abandoned"


def test_an_update_whose_client_left_during_the_latency_still_applies(
    simulator: SimulatorHandle,
) -> None:
    with httpx.Client(base_url=simulator.api_url, headers=simulator.headers) as api:
        created = api.post("/instances", json=closeio_body()).json()
    simulator.control.set_latency(500)
    send_and_disconnect(
        simulator, "PATCH", f"/instances/{created['id']}", {"configuration": {"username": "rotated-key"}}
    )
    wait_until(lambda: answered(simulator, "PATCH", "/instances/{id}") == [200], timeout=10, what="the PATCH")
    assert simulator.control.instance(created["id"])["configuration"]["username"] == "rotated-key"
