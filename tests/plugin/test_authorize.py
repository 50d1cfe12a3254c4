"""`authorize` on the real API server, without the operator: the test plays its part (it writes
status.authorization.url, takes the code out of the Secret and writes Ready or a stall through the
status subresource), so each step is shown where it happens. What the command writes (code and
state, or a denied consent's error, into a Secret it creates with the operator's watch label, or
merges into one that keeps its other keys), which redirects it refuses (another state: nothing
written), when its wait ends (Ready: 0 with the instance ID; a stall: 1 with the reason and
message, escaped), and that the code never reaches stdout or stderr.

Two tests run the plugin as a process, because they show what only a process shows: the consent
URL as one line on stdout that a script reads while the command waits, the command waiting for
the URL the operator has not written yet, and a real HTTP redirect to its loopback listener."""

from __future__ import annotations

import base64
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from hack.controlplane.cluster import ControlPlane, free_port
from kubectl_openconnectors.names import API_VERSION, GROUP, INSTANCE_PLURAL, VERSION
from tests.fixtures.waiting import wait_until
from tests.plugin.conftest import Run

Plugin = Callable[..., Run]
STATE = "st-7f3a9c0e"
SESSION = "run-5e55"  # the in-process runs' session (`session` fixture): the state is STATE.SESSION
SESSION_STATE = f"{STATE}.{SESSION}"
CODE = "c0de-9f2b-d4e1-never-printed"
SECRET = "crm-authorization"
PROXY = "https://oauth-proxy.example/callback"  # a callback that is not on this machine: --paste
NOW = "2026-01-01T00:00:00Z"
HOSTILE = "\x1b]52;c;AAAA\x07 the provider refused the code \u202egnp.exe"


def consent_url(callback: str, state: str = STATE) -> str:
    return (
        "http://127.0.0.1:9/oauth-provider/hubspot/authorize?client_id=app"
        f"&state={state}&redirect_uri={quote(callback, safe='')}"
    )


@pytest.fixture(autouse=True)
def session(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process runs' session, fixed: the redirect a test pastes carries it (a run as a
    process makes its own, read from the URL it prints)."""
    monkeypatch.setattr("kubectl_openconnectors.consent.new_session", lambda: SESSION)


def with_session(url: str, state: str) -> str:
    """The consent URL as the command opens it: its state replaced with `state`."""
    parts = urlsplit(url)
    query = [(k, state if k == "state" else v) for k, values in parse_qs(parts.query).items() for v in values]
    return urlunsplit(parts._replace(query=urlencode(query)))


def condition(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": NOW}


def required(name: str, namespace: str) -> list[dict[str, str]]:
    says = f"Authorize: kubectl openconnectors authorize {name} -n {namespace}"
    return [
        condition("Ready", "False", "AuthorizationRequired", says),
        condition("Stalled", "True", "AuthorizationRequired", says),
    ]


class Cluster:
    """The test's objects, and the operator's part played by hand."""

    def __init__(self, custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str) -> None:
        self.custom, self.core, self.namespace = custom, core, namespace

    def instance(self, oauth: dict[str, Any] | None, name: str = "crm") -> None:
        spec: dict[str, Any] = {"connectorKey": "hubspot", **({"oauth": oauth} if oauth else {})}
        body = {
            "apiVersion": API_VERSION,
            "kind": "ConnectorInstance",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, INSTANCE_PLURAL, body)

    def oauth_instance(self, callback: str = PROXY, url: str | None = "") -> None:
        """An OAuth instance stalled in AuthorizationRequired, with the consent URL (None: none yet)."""
        grant = {"authorizationSecretRef": {"name": SECRET}}
        self.instance({"appCredentialsSecretRef": {"name": "hubspot-app"}, "callbackURL": callback, **grant})
        if url is not None:
            self.status(
                conditions=required("crm", self.namespace),
                authorization={"url": url or consent_url(callback)},
            )

    def status(self, **status: Any) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, INSTANCE_PLURAL, "crm", {"status": status}
        )

    def secret(self) -> client.V1Secret | None:
        try:
            found: client.V1Secret = self.core.read_namespaced_secret(SECRET, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def data(self) -> dict[str, str]:
        found = self.secret()
        return {k: base64.b64decode(v).decode() for k, v in ((found.data if found else None) or {}).items()}

    def take_grant(self, key: str = "code") -> None:
        """The operator's first half: wait for the grant, then remove it (as it does once used)."""
        wait_until(lambda: key in self.data(), timeout=20, what=f"the {key} in the Secret")
        patch = {"data": {"code": None, "error": None, "state": None}}
        self.core.patch_namespaced_secret(SECRET, self.namespace, patch)

    def ready(self) -> None:
        self.take_grant()
        ready = [condition("Ready", "True", "Available"), condition("Stalled", "False", "Idle")]
        self.status(instanceID=400123, conditions=ready, authorization={"url": None})

    def rejected(self) -> None:
        """The operator kept the code it did not send: the configuration was refused first."""
        wait_until(lambda: "code" in self.data(), timeout=20, what="the code in the Secret")
        stalled = [
            condition("Ready", "False", "ConfigurationRejected", "The platform rejected the request"),
            condition("Stalled", "True", "ConfigurationRejected", "The platform rejected the request"),
        ]
        self.status(conditions=stalled)

    def stall(self, key: str, message: str) -> None:
        self.take_grant(key)
        stalled = [
            condition("Ready", "False", "AuthorizationRequired", message),
            condition("Stalled", "True", "AuthorizationRequired", message),
        ]
        self.status(conditions=stalled, authorization={"url": consent_url(PROXY, "st-next")})


@pytest.fixture
def cluster(custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str, crd: None) -> Cluster:
    return Cluster(custom, core, namespace)


@contextmanager
def meanwhile(part: Callable[[], None]) -> Iterator[Future[None]]:
    """The operator's part on a thread while the command runs; its failure fails the test."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(part)
        yield future
        future.result(timeout=30)


def authorize(plugin: Plugin, cluster: Cluster, *args: str, stdin: str | None = None) -> Run:
    run = plugin("authorize", "crm", "-n", cluster.namespace, "--no-browser", *args, stdin=stdin)
    assert CODE not in run.stdout + run.stderr
    return run


def redirect(query: str, callback: str = PROXY) -> str:
    return f"{callback}?{query}\n"


def test_paste_writes_code_and_state_into_a_secret_it_creates_with_the_watch_label(
    plugin: Plugin, cluster: Cluster
) -> None:
    cluster.oauth_instance()
    run = authorize(
        plugin, cluster, "--paste", "--no-wait", stdin=redirect(f"code={CODE}&state={SESSION_STATE}")
    )
    assert run.code == 0, run.stderr
    assert run.stdout.splitlines()[0] == with_session(
        consent_url(PROXY), SESSION_STATE
    )  # the URL, one line, for a script
    assert "(Secret=crm-authorization, code=(not shown), state=(matched))" in run.stdout
    secret = cluster.secret()
    assert secret is not None
    assert (secret.type, secret.metadata.labels) == ("Opaque", {"openconnectors.io/watch": "input"})
    assert cluster.data() == {"code": CODE, "state": SESSION_STATE}


def test_an_existing_secret_keeps_its_other_keys_and_a_denied_consent_writes_error(
    plugin: Plugin, cluster: Cluster
) -> None:
    cluster.oauth_instance()
    cluster.core.create_namespaced_secret(
        cluster.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=SECRET, labels={"team": "crm"}),
            string_data={"note": "kept", "code": "an-older-code"},
        ),
    )
    denied = authorize(
        plugin, cluster, "--paste", "--no-wait", stdin=redirect(f"error=access_denied&state={SESSION_STATE}")
    )
    assert denied.code == 0, denied.stderr
    assert "error=access_denied, state=(matched), code=(removed)" in denied.stdout
    assert cluster.data() == {"note": "kept", "error": "access_denied", "state": SESSION_STATE}
    secret = cluster.secret()
    assert secret is not None
    assert secret.metadata.labels == {"team": "crm", "openconnectors.io/watch": "input"}
    # A code afterwards removes the error, and the other keys still stay.
    allowed = authorize(
        plugin, cluster, "--paste", "--no-wait", stdin=redirect(f"code={CODE}&state={SESSION_STATE}")
    )
    assert allowed.code == 0, allowed.stderr
    assert cluster.data() == {"note": "kept", "code": CODE, "state": SESSION_STATE}


def test_a_redirect_of_another_state_is_refused_and_nothing_is_written(
    plugin: Plugin, cluster: Cluster
) -> None:
    cluster.oauth_instance()
    run = authorize(plugin, cluster, "--paste", stdin=redirect(f"code={CODE}&state=st-older"))
    assert run.code == 2, run.stderr
    assert "the redirect's state is not the one of the consent URL: nothing was written" in run.stderr
    assert cluster.secret() is None


def test_the_wait_ends_on_a_stall_with_its_reason_and_message_escaped(
    plugin: Plugin, cluster: Cluster
) -> None:
    cluster.oauth_instance()
    with meanwhile(lambda: cluster.stall("code", HOSTILE)):
        run = authorize(
            plugin,
            cluster,
            "--paste",
            "--timeout",
            "30",
            stdin=redirect(f"code={CODE}&state={SESSION_STATE}"),
        )
    assert run.code == 1, run.stderr
    line = run.stdout.splitlines()[-1]
    assert line.startswith(f"authorize {cluster.namespace}/crm failed after ")
    assert r"AuthorizationRequired: \x1b]52;c;AAAA\x07 the provider refused the code \u202egnp.exe" in line
    assert "\x1b" not in run.stdout
    assert "\u202e" not in run.stdout
    assert cluster.data() == {}


def test_a_denied_consent_ends_on_the_condition_the_operator_writes(plugin: Plugin, cluster: Cluster) -> None:
    cluster.oauth_instance()
    said = "The consent was denied at the provider (access_denied): authorize again"
    with meanwhile(lambda: cluster.stall("error", said)):
        run = authorize(
            plugin,
            cluster,
            "--paste",
            "--timeout",
            "30",
            "-o",
            "json",
            stdin=redirect(f"error=access_denied&state={SESSION_STATE}"),
        )
    assert run.code == 1, run.stderr
    assert run.stderr.splitlines()[0] == with_session(
        consent_url(PROXY), SESSION_STATE
    )  # with -o json the URL goes to stderr
    data = run.json()
    assert (data["result"], data["message"]) == ("failed", f"AuthorizationRequired: {said}")
    assert data["written"] == {"Secret": SECRET, "error": "access_denied", "state": "(matched)"}


def test_a_stall_for_another_reason_ends_the_wait_though_the_code_stays(
    plugin: Plugin, cluster: Cluster
) -> None:
    """The operator keeps a code it never sent (the configuration was rejected before it): that
    stall is its answer, not a reason to wait out the timeout."""
    cluster.oauth_instance()
    with meanwhile(cluster.rejected):
        run = authorize(
            plugin,
            cluster,
            "--paste",
            "--timeout",
            "30",
            stdin=redirect(f"code={CODE}&state={SESSION_STATE}"),
        )
    assert run.code == 1, run.stderr
    assert "ConfigurationRejected: The platform rejected the request" in run.stdout
    assert cluster.data() == {"code": CODE, "state": SESSION_STATE}


def test_ready_is_no_answer_while_the_code_is_still_in_the_secret(plugin: Plugin, cluster: Cluster) -> None:
    """Only the operator taking the code out of the Secret says it has seen it: a Ready read before
    that (an object being re-authenticated, or a status not yet rewritten) ends nothing."""
    cluster.oauth_instance()
    cluster.status(instanceID=400123, conditions=[condition("Ready", "True", "Available")])
    run = authorize(
        plugin, cluster, "--paste", "--timeout", "1", stdin=redirect(f"code={CODE}&state={SESSION_STATE}")
    )
    assert run.code == 4, run.stderr
    assert "the code is still in the Secret: the operator has not taken it" in run.stdout
    assert cluster.data() == {"code": CODE, "state": SESSION_STATE}


def test_what_cannot_be_authorized_is_refused_or_has_nothing_to_do(plugin: Plugin, cluster: Cluster) -> None:
    app = {"appCredentialsSecretRef": {"name": "hubspot-app"}, "callbackURL": PROXY}
    cluster.instance({**app, "refreshTokenSecretRef": {"name": "token"}}, name="from-token")
    cluster.instance(None, name="closeio")
    for name, says in (
        ("from-token", "put a new refresh token into that Secret"),
        ("closeio", "not an OAuth"),
    ):
        run = plugin("authorize", name, "-n", cluster.namespace, "--paste", stdin="")
        assert run.code == 2, run.stderr
        assert says in run.stderr
    assert plugin("authorize", "gone", "-n", cluster.namespace).code == 3
    far = plugin("authorize", "gone", "-n", cluster.namespace, "--listen", "0.0.0.0:8765")
    assert far.code == 2  # refused before any read
    assert "only a loopback IP address" in far.stderr
    cluster.oauth_instance(url=None)
    cluster.status(instanceID=400123, conditions=[condition("Ready", "True", "Available")])
    nothing = plugin("authorize", "crm", "-n", cluster.namespace, "--paste", stdin="")
    assert nothing.code == 0, nothing.stderr
    assert "no status.authorization.url: nothing to authorize" in nothing.stdout
    assert cluster.secret() is None


def test_no_consent_url_in_time_is_exit_4(plugin: Plugin, cluster: Cluster) -> None:
    cluster.oauth_instance(url=None)
    run = plugin("authorize", "crm", "-n", cluster.namespace, "--paste", "--timeout", "0.5", stdin="")
    assert run.code == 4, run.stderr
    assert "the operator wrote no status.authorization.url within 0.5s" in run.stdout


# As a process


class Lines:
    """A stream read on a thread, line by line, for a test that must wait for a line with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

        def read() -> None:
            for line in stream:
                self.lines.put(line)
            self.lines.put(None)  # the end of the stream

        threading.Thread(target=read, daemon=True).start()

    def until(self, predicate: Callable[[str], bool], timeout: float = 20) -> str:
        while True:
            line = self.lines.get(timeout=timeout)  # queue.Empty fails the test
            assert line is not None, f"the stream ended; it said: {''.join(self.seen)}"
            self.seen.append(line)
            if predicate(line):
                return line.rstrip("\n")

    def rest(self) -> str:
        """Everything it said, once the process has ended."""
        while (line := self.lines.get(timeout=20)) is not None:
            self.seen.append(line)
        return "".join(self.seen)


def started(
    control_plane: ControlPlane, cluster: Cluster, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "kubectl_openconnectors", "authorize", "crm", "-n", cluster.namespace]
    command += ["--kubeconfig", str(control_plane.kubeconfig), "--timeout", "30", *args]
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        env=env,
    )


def test_a_script_reads_the_url_while_the_command_waits_for_it_then_for_ready(
    control_plane: ControlPlane, cluster: Cluster
) -> None:
    """The operator has not written the URL yet when the command starts: it waits for it, prints
    it on stdout as one line, takes the pasted redirect and waits for Ready."""
    cluster.oauth_instance(url=None)
    process = started(control_plane, cluster, "--paste", "--no-browser")
    out, err = Lines(process.stdout), Lines(process.stderr)  # type: ignore[arg-type]
    err.until(lambda line: "for the operator to write status.authorization.url" in line)
    cluster.status(conditions=required("crm", cluster.namespace), authorization={"url": consent_url(PROXY)})
    url = out.until(lambda _: True)
    state = parse_qs(urlsplit(url).query)["state"][0]
    assert state.startswith(f"{STATE}.")
    assert state != SESSION_STATE  # a process makes its own session
    assert url == with_session(consent_url(PROXY), state)
    with meanwhile(cluster.ready):
        assert process.stdin is not None
        process.stdin.write(redirect(f"code={CODE}&state={state}"))
        process.stdin.close()
        code = process.wait(timeout=30)
    stdout, stderr = out.rest(), err.rest()
    assert code == 0, stderr
    assert stdout.splitlines()[-1].startswith(f"authorize {cluster.namespace}/crm handled after ")
    assert "Ready, instance 400123" in stdout
    assert CODE not in stdout + stderr


def test_listen_receives_the_providers_redirect_and_refuses_another_state(
    control_plane: ControlPlane, cluster: Cluster
) -> None:
    """The callback is a loopback http URL, so the command listens there by default. The URL on
    stdout means it listens already (it starts the server first): the test's HTTP client is the
    browser the provider redirects."""
    callback = f"http://127.0.0.1:{free_port()}/callback"
    cluster.oauth_instance(callback=callback)
    process = started(control_plane, cluster, "--no-wait", "--no-browser")
    out, err = Lines(process.stdout), Lines(process.stderr)  # type: ignore[arg-type]
    url = out.until(lambda _: True)
    state = parse_qs(urlsplit(url).query)["state"][0]
    assert httpx.get(f"{callback}?code={CODE}&state=st-older").status_code == 400
    err.until(lambda line: "a redirect with another state was refused" in line)
    assert cluster.secret() is None
    page = httpx.get(f"{callback}?code={CODE}&state={state}")
    assert (page.status_code, "You can close this window" in page.text) == (200, True)
    code = process.wait(timeout=30)
    stdout, stderr = out.rest(), err.rest()
    assert code == 0, stderr
    assert f"for the redirect on {callback}" in stderr
    assert cluster.data() == {"code": CODE, "state": state}
    assert state.startswith(f"{STATE}.")
    assert CODE not in stdout + stderr


# A browser that is the provider too: it follows the consent URL's redirect_uri with a code and the
# state, as the provider's "allow" would. A stand-in for what this tier cannot run (the integration
# tier clicks allow in a real headless Chromium on the simulator's consent page).
FOLLOWING_BROWSER = f"""
import sys, urllib.parse, urllib.request
query = urllib.parse.parse_qs(urllib.parse.urlsplit(sys.argv[1]).query)
back = {{"code": "{CODE}", "state": query["state"][0]}}
urllib.request.urlopen(query["redirect_uri"][0] + "?" + urllib.parse.urlencode(back), timeout=10).read()
"""


def test_the_browser_opens_the_consent_url_and_when_none_can_the_url_is_printed(
    control_plane: ControlPlane, cluster: Cluster, tmp_path: Path
) -> None:
    """$BROWSER is how Python's webbrowser finds a browser (without a display or a terminal it
    tries nothing else): one that fails, then one that follows the redirect to the listener."""
    callback = f"http://127.0.0.1:{free_port()}/callback"
    cluster.oauth_instance(callback=callback)
    script = tmp_path / "browser.py"
    script.write_text(FOLLOWING_BROWSER)
    bare = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    failing = started(control_plane, cluster, "--paste", "--no-wait", env={**bare, "BROWSER": "false"})
    out, err = Lines(failing.stdout), Lines(failing.stderr)  # type: ignore[arg-type]
    printed = out.until(lambda _: True)
    assert printed == with_session(consent_url(callback), parse_qs(urlsplit(printed).query)["state"][0])
    err.until(lambda line: "no browser could be opened: open this URL yourself" in line)
    failing.kill()
    assert failing.wait(timeout=30) != 0
    assert cluster.secret() is None
    browser = f"{sys.executable} {script} %s"
    opened = started(control_plane, cluster, "--no-wait", env={**bare, "BROWSER": browser})
    out, err = Lines(opened.stdout), Lines(opened.stderr)  # type: ignore[arg-type]
    code = opened.wait(timeout=30)
    stdout, stderr = out.rest(), err.rest()
    assert code == 0, stderr
    opened_url = stderr.split("If none appeared, open: ", 1)[1].split()[0]
    assert "Opened the consent page in a browser." in stderr
    assert opened_url not in stdout  # opened, not printed on stdout
    state = parse_qs(urlsplit(opened_url).query)["state"][0]
    assert opened_url == with_session(consent_url(callback), state)
    assert cluster.data() == {"code": CODE, "state": state}
    assert CODE not in stdout + stderr
