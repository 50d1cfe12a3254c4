"""The API host allowlist (issue 9, findings 1 and 2): no request, and no Secret, leaves the operator
for a host the platform team did not allow (moved here from tests/integration: the passes and the
delete handler in-process, with the operator's settings where the process had its flags).

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

from tests.integration.support import ACCOUNT, account_secret, closeio_spec, put_secret, ready_inputs
from tests.reconciler.kopfstandin import Operator

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


def simulator_host(op: Operator) -> str:
    return str(urlsplit(op.simulator.api_url).netloc)


async def test_a_host_outside_the_allowlist_gets_nothing(operator: Operator, her_server: Recorder) -> None:
    op = operator
    await op.restart(allowed_api_hosts=(simulator_host(op),))  # her server's port is not allowed
    account_secret(op.core, op.namespace, op.simulator)
    put_secret(op.core, op.namespace, DB_SECRET, {"password": "db-pa55word-not-hers"})
    spec = closeio_spec(
        apiURL=her_server.api_url,
        configuration=[
            {"key": "username", "valueFrom": {"secretKeyRef": {"name": DB_SECRET, "key": "password"}}}
        ],
    )
    op.instances.create("exfil", spec)

    stalled = await op.condition("exfil", "Stalled", "True", reason="APIHostNotAllowed", passes=1)
    assert "not in the operator's allowed API hosts" in stalled["message"]
    assert "--allowed-api-hosts" in stalled["message"]
    assert op.instances.condition("exfil", "Ready")["status"] == "False"
    await op.run("exfil")  # stalled: another pass sends nothing either
    assert her_server.requests == []
    # Nothing was read for her: the referenced Secrets carry no mark of the operator.
    for name in (ACCOUNT, DB_SECRET):
        labels = op.core.read_namespaced_secret(name, op.namespace).metadata.labels or {}
        assert "openconnectors.io/watch" not in labels, name

    # An allowed URL in the same operator works as usual: the refusal is about the host only.
    put_secret(op.core, op.namespace, "closeio-api", {"apiKey": "k"})
    op.instances.create("fine", closeio_spec(apiURL=op.simulator.api_url))
    await op.ready("fine", passes=1)
    assert her_server.requests == []


@pytest.mark.settings(allow_insecure_http=False)  # the simulator's host allowed (127.0.0.1:*), http not
async def test_plain_http_is_refused_unless_allowed(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec())
    stalled = await op.condition("crm", "Stalled", "True", reason="APIHostNotAllowed", passes=1)
    assert "plain http is not allowed" in stalled["message"]
    assert op.simulator.control.counters().get("POST /instances", 0) == 0


async def test_deleting_an_instance_on_a_host_no_longer_allowed_says_how_to_release_it(
    operator: Operator,
) -> None:
    op = operator
    await op.create_ready()
    await op.restart(allowed_api_hosts=("api.openconnectors.*.ext.hana.ondemand.com",))
    refused = await op.delete("crm")
    assert refused is not None  # kopf retries; the object stays
    # The delete handler's word (no daemon pass runs here to say APIHostNotAllowed first).
    stalled = op.instances.condition("crm", "Stalled")
    assert stalled.get("reason") == "APIHostNotAllowed"
    assert "Cannot delete the remote instance" in stalled.get("message", "")
    assert "deletionPolicy" in stalled["message"]  # the one-line release
    assert op.simulator.control.counters().get("DELETE /instances/{id}", 0) == 0
    assert op.instances.get("crm") is not None
