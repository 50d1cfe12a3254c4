"""The API host allowlist (issue 9, findings 1 and 2): no request, and no Secret, leaves the operator
for a host the platform team did not allow.

A tenant who may manage ConnectorInstances points `spec.apiURL` at her own server and references
Secrets in `configuration`. Her server must receive nothing (no account secrets, no values), the
object must say why in `Stalled` with reason `APIHostNotAllowed`, and the Secrets must not even be
labelled by the operator. Plain http is refused unless the operator allows it. (A query,
fragment or user information in `spec.apiURL` is refused by the CRD itself: tests/api.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.fixtures.operator import wait_until
from tests.integration.support import ACCOUNT, Env, account_secret, closeio_spec, put_secret

DB_SECRET = "db-password"


class Recorder(ThreadingHTTPServer):
    """Her server: answers anything with an empty instance list and remembers every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/elements/api-v2"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def _answer(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"[]")

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def her_server() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def simulator_host(env: Env) -> str:
    return str(urlsplit(env.simulator.api_url).netloc)


@pytest.mark.manual_operator
def test_a_host_outside_the_allowlist_gets_nothing(env: Env, her_server: Recorder) -> None:
    env.start_operator("--allowed-api-hosts", simulator_host(env))
    account_secret(env.core, env.namespace, env.simulator)
    put_secret(env.core, env.namespace, DB_SECRET, {"password": "db-pa55word-not-hers"})
    spec = closeio_spec(
        apiURL=her_server.api_url,
        configuration=[
            {"key": "username", "valueFrom": {"secretKeyRef": {"name": DB_SECRET, "key": "password"}}}
        ],
    )
    env.instances.create("exfil", spec)

    stalled = env.instances.wait_condition("exfil", "Stalled", "True", reason="APIHostNotAllowed")
    assert "not in the operator's allowed API hosts" in stalled["message"]
    assert "--allowed-api-hosts" in stalled["message"]
    assert env.instances.condition("exfil", "Ready")["status"] == "False"
    assert her_server.requests == []
    # Nothing was read for her: the referenced Secrets carry no mark of the operator.
    for name in (ACCOUNT, DB_SECRET):
        labels = env.core.read_namespaced_secret(name, env.namespace).metadata.labels or {}
        assert "openconnectors.io/watch" not in labels, name

    # An allowed URL in the same operator works as usual: the refusal is about the host only.
    put_secret(env.core, env.namespace, "closeio-api", {"apiKey": "k"})
    env.instances.create("fine", closeio_spec(apiURL=env.simulator.api_url))
    env.instances.wait_ready("fine")
    assert her_server.requests == []


@pytest.mark.manual_operator
def test_plain_http_is_refused_unless_allowed(env: Env) -> None:
    env.start_operator("--allowed-api-hosts", simulator_host(env), "--no-allow-insecure-http")
    env.ready_inputs()
    env.instances.create("crm", closeio_spec())
    stalled = env.instances.wait_condition("crm", "Stalled", "True", reason="APIHostNotAllowed")
    assert "plain http is not allowed" in stalled["message"]
    assert env.simulator.control.counters().get("POST /instances", 0) == 0


@pytest.mark.manual_operator
def test_deleting_an_instance_on_a_host_no_longer_allowed_says_how_to_release_it(env: Env) -> None:
    operator = env.start_operator()
    env.create_ready()
    operator.stop()
    env.start_operator("--allowed-api-hosts", "api.openconnectors.*.ext.hana.ondemand.com")
    env.instances.delete("crm")
    # The daemon's last pass may say APIHostNotAllowed first; the delete handler's word comes after.
    stalled = wait_until(
        lambda: (
            (c := env.instances.condition("crm", "Stalled")).get("reason") == "APIHostNotAllowed"
            and "Cannot delete the remote instance" in c.get("message", "")
            and c
        ),
        timeout=30,
        what="the delete handler's APIHostNotAllowed",
    )
    assert "deletionPolicy" in stalled["message"]  # the one-line release
    assert env.simulator.control.counters().get("DELETE /instances/{id}", 0) == 0
