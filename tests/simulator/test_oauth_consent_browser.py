"""The simulated provider's consent page, clicked in a real headless Chromium (tests/fixtures/browser.py).

Why a real browser: a person consents in a browser, so what has to work is what a browser makes of
the page: it renders the HTML, submits the form with its hidden fields and the clicked button's
name and value, and follows the provider's 302 to a loopback `http://127.0.0.1:PORT` callback, where
`kubectl openconnectors authorize --listen` waits. tests/simulator/test_oauth_flow.py parses the
form itself and posts what it read (support.consent), so it cannot show any of that. The callback
here is a tiny HTTP server in the test, standing in for the plugin's listener: it records the query
the browser brings. The code it receives then creates an instance, once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.fixtures.simulator import SimulatorHandle
from tests.fixtures.waiting import wait_until
from tests.simulator.support import assert_error, consent_url, create, oauth_configuration

CALLBACK_PATH = "/callback"
# An opaque state with characters that must survive the form post and the redirect's query encoding.
STATE = "op4que/st+te=with&chars"
REDIRECT_SECONDS = 10.0
EXCHANGE_FAILED = "Unable to exchange the OAuth code for an access token"

# The tests share one worker's browser (--dist loadgroup): one Chromium start instead of one per worker.
pytestmark = pytest.mark.xdist_group("browser")


@dataclass
class Loopback:
    """What the loopback callback received: one query (a dict of lists) per request to CALLBACK_PATH."""

    url: str
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[dict[str, list[str]]]:
        with self.lock:
            return list(self.queries)


def _handler(loopback: Loopback) -> type[BaseHTTPRequestHandler]:
    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != CALLBACK_PATH:  # the browser asks for /favicon.ico too
                self.send_error(404)
                return
            with loopback.lock:
                loopback.queries.append(parse_qs(parts.query, keep_blank_values=True))
            page = b"<!DOCTYPE html><title>Done</title><p>You may close this window.</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the query holds a code."""

    return Callback


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    recorded = Loopback(f"http://127.0.0.1:{server.server_address[1]}{CALLBACK_PATH}")
    server.RequestHandlerClass = _handler(recorded)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="oauth-loopback", daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _click(driver: WebDriver, url: str, button: str, loopback: Loopback) -> dict[str, str]:
    """Open the consent page, click `button`, and return the one query the callback received."""
    driver.get(url)
    assert "authorize access" in driver.title
    driver.find_element(By.ID, button).click()
    received = wait_until(
        loopback.received, timeout=REDIRECT_SECONDS, what="the provider's redirect at the loopback callback"
    )
    [query] = received
    assert all(len(values) == 1 for values in query.values()), query
    # The browser followed the redirect and shows the callback's page.
    wait_until(
        lambda: driver.current_url.startswith(loopback.url), timeout=REDIRECT_SECONDS, what="callback page"
    )
    return {name: values[0] for name, values in query.items()}


def test_allow_brings_a_code_and_the_state_to_the_loopback_callback_and_the_code_creates_once(
    simulator: SimulatorHandle,
    simulator_client: httpx.Client,
    browser: WebDriver,
    loopback: Loopback,
) -> None:
    url = consent_url(simulator_client, "hubspot", callback=loopback.url, state=STATE, scope="contacts")
    query = _click(browser, url, "allow", loopback)
    assert set(query) == {"code", "state"}
    assert query["state"] == STATE
    body = {
        "element": {"key": "hubspot"},
        "name": "consented-in-a-browser",
        "configuration": oauth_configuration(callback=loopback.url),
        "providerData": {"code": query["code"]},
    }
    instance = create(simulator_client, body)
    assert instance["valid"] is True
    reused = simulator_client.post("/instances", json=body)
    assert_error(reused, 400, EXCHANGE_FAILED)
    assert "invalid_grant" in reused.json()["providerMessage"]
    assert [made["id"] for made in simulator.control.instances()] == [instance["id"]]


def test_deny_brings_access_denied_and_the_state_and_no_code(
    simulator: SimulatorHandle,
    simulator_client: httpx.Client,
    browser: WebDriver,
    loopback: Loopback,
) -> None:
    url = consent_url(simulator_client, "sfdc", callback=loopback.url, state=STATE)
    query = _click(browser, url, "deny", loopback)
    assert query["error"] == "access_denied"
    assert query["state"] == STATE
    assert "code" not in query
    assert simulator.control.instances() == []
