"""OAuth consent end to end: the operator as a process, the simulator over HTTP, the real API
server, `kubectl openconnectors authorize` as a process listening on a loopback port, and a real
headless Chromium clicking the fake provider's page.

Only this tier shows the whole hand-over a person makes: the operator's consent URL in status,
the browser's redirect reaching the plugin's listener, the plugin's Secret write waking the
operator through its label-filtered watch, and the plugin returning once the operator has
consumed the code. The passes' decisions (refusals, refresh tokens, 401s) are
tests/reconciler/test_oauth.py's. Afterwards everything the operator wrote is searched for the
code, the refresh tokens and the client secret.
"""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import pytest
from kubernetes import client
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from hack.controlplane.cluster import ControlPlane
from tests.fixtures.operator import OperatorProcess, wait_until
from tests.integration.support import ACCOUNT, Env, put_secret, remote, secret_data

CLIENT_ID, CLIENT_SECRET = "k8s-e2e-app", "e2e-client-secret-5c0e7d12"
FIRST_REFRESH_TOKEN = "e2e-refresh-token-from-elsewhere-9a1b"
RESYNC = 5.0  # seconds: the operator's smallest --resync-interval, so "within one resync" is short
PLUGIN_TIMEOUT = "60"
WRITES = ("POST /instances", "PUT /instances/{id}", "PATCH /instances/{id}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def oauth_spec(callback: str, **grant: Any) -> dict[str, Any]:
    return {
        "connectorKey": "hubspot",
        "credentialsSecretRef": {"name": ACCOUNT},
        "oauth": {"appCredentialsSecretRef": {"name": "crm-app"}, "callbackURL": callback, **grant},
    }


def writes(env: Env) -> dict[str, int]:
    counters = env.simulator.control.counters()
    return {call: counters.get(call, 0) for call in WRITES}


@dataclass
class Authorize:
    """`kubectl openconnectors authorize` running as a process: its stdout line by line."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str]

    def consent_url(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=deadline - time.monotonic()).strip()
            except queue.Empty:
                break
            if line.startswith("http"):
                return line
        self.process.kill()
        _, err = self.process.communicate(timeout=10)
        pytest.fail(f"authorize printed no consent URL; stderr: {err}")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=int(PLUGIN_TIMEOUT) + 10)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return self.process.returncode, "".join(rest) + (out or ""), err


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@pytest.fixture
def authorize(control_plane: ControlPlane) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def run(env: Env, name: str, port: int) -> Authorize:
        command = [
            sys.executable, "-m", "kubectl_openconnectors", "authorize", name, "-n", env.namespace,
            "--kubeconfig", str(control_plane.kubeconfig), "--no-browser",
            "--listen", f"127.0.0.1:{port}", "--timeout", PLUGIN_TIMEOUT,
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        return Authorize(process, lines)

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def click(browser: WebDriver, url: str, button: str) -> float:
    """Open the consent page and click `button`; the moment of the click."""
    browser.get(url)
    element = browser.find_element(By.ID, button)
    clicked = time.monotonic()
    element.click()
    return clicked


def stalled_message(env: Env, name: str, reason: str, timeout: float = 30.0) -> str:
    condition = env.instances.wait_condition(name, "Stalled", "True", reason=reason, timeout=timeout)
    message: str = condition["message"]
    return message


@pytest.mark.manual_operator
def test_consent_in_a_browser_creates_then_reauthenticates_the_same_instance(
    env: Env, browser: WebDriver, authorize: Any
) -> None:
    operator = env.start_operator("--log-level", "DEBUG", "--resync-interval", f"{RESYNC:g}")
    env.ready_inputs()
    put_secret(env.core, env.namespace, "crm-app", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})
    port = free_port()
    env.instances.create(
        "crm", oauth_spec(f"http://127.0.0.1:{port}/callback", authorizationSecretRef={"name": "crm-oauth"})
    )
    assert "authorize crm" in stalled_message(env, "crm", "AuthorizationRequired")
    snapshots, scrapes = [json.dumps(env.instances.get("crm"))], [operator.metrics()]

    # A denied consent: a clear condition, nothing created.
    run = authorize(env, "crm", port)
    click(browser, run.consent_url(), "deny")
    code, out, err = run.finish()
    assert code != 0, out + err
    wait_until(
        lambda: "consent was not given" in env.instances.condition("crm", "Stalled").get("message", ""),
        what="the denial reported",
    )
    assert "access_denied" in env.instances.condition("crm", "Stalled")["message"]
    assert env.simulator.control.instances() == []

    # Allowed: Ready within 10 s of the click, one POST, the code gone from its Secret.
    env.simulator.control.reset_counters()
    run = authorize(env, "crm", port)
    clicked = click(browser, run.consent_url(), "allow")
    wait_until(
        lambda: env.instances.condition("crm", "Ready").get("status") == "True",
        timeout=10.0 - (time.monotonic() - clicked),
        what="Ready within 10 s of the click",
    )
    code, out, err = run.finish()
    assert code == 0, out + err
    obj = env.instances.get("crm") or {}
    instance_id = obj["status"]["instanceID"]
    assert str(instance_id) in out
    assert writes(env) == {**dict.fromkeys(WRITES, 0), "POST /instances": 1}
    assert "code" not in (secret_data(env.core, env.namespace, "crm-oauth") or {})
    first = remote(env.simulator, instance_id)
    codes = [first["providerData"]["code"]]
    snapshots.append(json.dumps(obj))
    scrapes.append(operator.metrics())

    # The provider revokes the refresh token: ReauthenticationRequired within one resync, an Event.
    env.simulator.control.revoke_refresh_token(instance_id)
    revoked = time.monotonic()
    message = stalled_message(env, "crm", "ReauthenticationRequired", timeout=RESYNC + 10)
    assert time.monotonic() - revoked <= RESYNC + 10
    assert f"kubectl openconnectors authorize crm -n {env.namespace}" in message
    wait_until(lambda: "ReauthenticationRequired" in event_reasons(env, "crm"), what="the Event")
    snapshots.append(json.dumps(env.instances.get("crm")))
    scrapes.append(operator.metrics())
    assert 'reason="ReauthenticationRequired"' in scrapes[-1]

    # Authorized again: the same instance, no POST, one PATCH (the grant works once: never a PUT, which a
    # broken kept-alive connection has aiohttp send twice).
    env.simulator.control.reset_counters()
    run = authorize(env, "crm", port)
    click(browser, run.consent_url(), "allow")
    code, out, err = run.finish()
    assert code == 0, out + err
    obj = env.instances.wait_ready("crm")
    assert obj["status"]["instanceID"] == instance_id
    assert writes(env) == {**dict.fromkeys(WRITES, 0), "PATCH /instances/{id}": 1}
    again = remote(env.simulator, instance_id)
    assert again["valid"] is True
    assert again["tags"] == first["tags"]
    codes.append(again["providerData"]["code"])
    snapshots.append(json.dumps(obj))
    scrapes.append(operator.metrics())

    # From a refresh token: one POST with externalAuthentication initial.
    env.simulator.control.reset_counters()
    put_secret(env.core, env.namespace, "crm2-refresh", {"refreshToken": FIRST_REFRESH_TOKEN})
    env.instances.create(
        "crm2",
        oauth_spec(f"http://127.0.0.1:{port}/callback", refreshTokenSecretRef={"name": "crm2-refresh"}),
    )
    second = env.instances.wait_ready("crm2")
    assert writes(env) == {**dict.fromkeys(WRITES, 0), "POST /instances": 1}
    from_token = remote(env.simulator, second["status"]["instanceID"])
    assert from_token["externalAuthentication"] == "initial"
    snapshots.append(json.dumps(second))
    scrapes.append(operator.metrics())
    operator.stop()

    leak_scan(env, operator, snapshots, scrapes, {
        "first code": codes[0],
        "second code": codes[1],
        "client secret": CLIENT_SECRET,
        "given refresh token": FIRST_REFRESH_TOKEN,
        "rotated refresh token": from_token["configuration"]["oauth.user.refresh_token"],
        "refresh token of the consent": again["configuration"]["oauth.user.refresh_token"],
    })  # fmt: skip


def event_reasons(env: Env, name: str) -> set[str]:
    events = env.core.list_namespaced_event(env.namespace, field_selector=f"involvedObject.name={name}")
    return {e.reason for e in events.items}


def leak_scan(
    env: Env, operator: OperatorProcess, snapshots: list[str], scrapes: list[str], canaries: dict[str, str]
) -> None:
    events = env.core.list_namespaced_event(env.namespace).items
    tokens = [secret_data(env.core, env.namespace, name) for name in ("crm-token", "crm2-token")]
    written = {
        "operator log": operator.log(),
        "events": json.dumps([client.ApiClient().sanitize_for_serialization(e) for e in events]),
        "object": "\n".join(snapshots),
        "metrics": "\n".join(scrapes),
        "token Secrets": json.dumps(tokens),
    }
    for where, text in written.items():
        for what, value in canaries.items():
            assert value not in text, f"the {what} leaked into the {where}"
    assert "DEBUG" in written["operator log"]
