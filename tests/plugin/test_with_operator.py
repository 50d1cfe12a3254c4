"""The day-2 commands with `--wait`, and `status` on a terminal, with the operator as a process,
the simulator over HTTP and the real API server: `--wait` returns only once the operator itself
has handled the request, which no other tier can show; and the terminal run shows what the
operator really wrote (conditions, its token Secret, a Pod using it) as a user's terminal gets it.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import yaml
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from kubectl_openconnectors.names import API_VERSION
from tests.integration.support import ACCOUNT, Env, closeio_spec, hand_made
from tests.plugin.conftest import Run

Plugin = Callable[..., Run]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
AGE = re.compile(r"^\d+[smhdy](\d+[smh])?$")
WAIT = "30"


def test_reconcile_waits_until_the_operator_handled_that_very_request(env: Env, plugin: Plugin) -> None:
    env.create_ready()
    run = plugin("reconcile", "crm", "-n", env.namespace, "--wait", "--timeout", WAIT, "-o", "json")
    assert run.code == 0, run.stderr
    data = run.json()
    written = data["written"]["openconnectors.io/reconcile-requested-at"]
    assert (data["action"], data["result"]) == ("reconcile", "handled")
    assert (env.instances.get("crm") or {})["status"]["lastHandledReconcileAt"] == written
    again = plugin("reconcile", "crm", "-n", env.namespace, "--wait", "--timeout", WAIT, "-o", "json").json()
    assert again["written"]["openconnectors.io/reconcile-requested-at"] > written  # a new value each time


def test_pause_and_resume_wait_for_the_synced_condition(env: Env, plugin: Plugin) -> None:
    env.create_ready()
    paused = plugin("pause", "crm", "-n", env.namespace, "--wait", "--timeout", WAIT)
    assert paused.code == 0, paused.stderr
    assert re.match(rf"pause {env.namespace}/crm handled after \d+\.\ds: ", paused.stdout)
    assert env.instances.condition("crm", "Synced")["reason"] == "Paused"
    # While paused a reconcile request is not handled: --wait says so instead of waiting it out.
    refused = plugin("reconcile", "crm", "-n", env.namespace, "--wait", "--timeout", WAIT, "-o", "yaml")
    assert refused.code == 1
    assert yaml.safe_load(refused.stdout)["message"].startswith("the object is paused")
    resumed = plugin("resume", "crm", "-n", env.namespace, "--wait", "--timeout", WAIT, "-o", "json")
    assert resumed.code == 0, resumed.stderr
    assert resumed.json()["written"] == {"openconnectors.io/paused": None}
    assert env.instances.condition("crm", "Synced")["reason"] != "Paused"
    assert "openconnectors.io/paused" not in (
        (env.instances.get("crm") or {})["metadata"].get("annotations") or {}
    )


def manifest(**spec: Any) -> str:
    """A ConnectorInstance without a name (the command gives it) or an instanceID (nor that)."""
    return yaml.safe_dump(
        {"apiVersion": API_VERSION, "kind": "ConnectorInstance", "spec": closeio_spec(**spec)}
    )


def test_adopt_creates_the_object_that_takes_over_the_instance_with_one_put(
    env: Env, plugin: Plugin, simulator_client: httpx.Client
) -> None:
    env.ready_inputs()
    made = simulator_client.post("/instances", json=hand_made("made-in-the-ui"))
    made.raise_for_status()
    instance_id = made.json()["id"]
    env.simulator.control.reset_counters()
    args = ("adopt", "crm", "-n", env.namespace, "--instance-id", str(instance_id), "-f", "-")
    run = plugin(*args, "--wait", "--timeout", WAIT, stdin=manifest())
    assert run.code == 0, run.stderr + run.stdout
    assert f"Ready, managing instance {instance_id}" in run.stdout
    obj = env.instances.get("crm") or {}
    assert (obj["spec"]["instanceID"], obj["status"]["instanceID"]) == (instance_id, instance_id)
    counters = env.simulator.control.counters()
    assert counters.get("POST /instances", 0) == 0
    assert counters.get("PUT /instances/{id}", 0) == 1
    # Again: the object adopts this instance already, so the command writes nothing and only waits.
    again = plugin(*args, "--wait", "--timeout", WAIT, "-o", "json", stdin=manifest())
    assert again.code == 0, again.stderr
    assert (again.json()["written"], again.json()["message"]) == (
        {},
        f"already exists with spec.instanceID {instance_id}: nothing written; "
        f"Ready, managing instance {instance_id}",
    )
    # Another ID for the same object is refused as bad input: instanceID never changes.
    other = plugin(
        "adopt", "crm", "-n", env.namespace, "--instance-id", "999999", "-f", "-", stdin=manifest()
    )
    assert other.code == 2
    assert "deletionPolicy Orphan" in other.stderr


def test_adopt_of_an_instance_that_does_not_exist_fails_fast_with_the_operators_reason(
    env: Env, plugin: Plugin
) -> None:
    env.ready_inputs()
    started = time.monotonic()
    args = ("adopt", "ghost", "-n", env.namespace, "--instance-id", "987654321", "-f", "-", "--wait")
    run = plugin(*args, "--timeout", WAIT, "-o", "json", stdin=manifest())
    assert run.code == 1, run.stdout
    assert run.json()["result"] == "failed"
    assert run.json()["message"].startswith("RemoteNotFound: ")
    assert time.monotonic() - started < float(WAIT)


def without_ages(text: str) -> list[list[str]]:
    """The words of each line but the ages (a second may pass between two runs)."""
    return [[w for w in line.split() if not AGE.match(w)] for line in text.splitlines()]


def on_a_terminal(command: list[str], env: dict[str, str], timeout: float = 30.0) -> tuple[int, str]:
    """Run `command` with its stdout on a new pseudo-terminal, as in a user's shell; the bytes the
    terminal received, and the exit code."""
    leader, follower = os.openpty()
    process = subprocess.Popen(command, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed its side of the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(leader)
    code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    return code, received.decode().replace("\r\n", "\n")


def test_status_on_a_terminal_is_coloured_and_piped_it_is_plain(
    env: Env, control_plane: ControlPlane, core: client.CoreV1Api
) -> None:
    env.create_ready()
    core.create_namespaced_service_account(
        env.namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default"))
    )
    volume = client.V1Volume(name="token", secret=client.V1SecretVolumeSource(secret_name="crm-token"))
    spec = client.V1PodSpec(containers=[client.V1Container(name="app", image="shop")], volumes=[volume])
    core.create_namespaced_pod(
        env.namespace, client.V1Pod(metadata=client.V1ObjectMeta(name="shop-1"), spec=spec)
    )
    command = [
        sys.executable,
        "-m",
        "kubectl_openconnectors",
        "status",
        "-n",
        env.namespace,
        "--kubeconfig",
        str(control_plane.kubeconfig),
    ]
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color"}

    code, screen = on_a_terminal(command, environment)
    assert code == 0, screen
    assert "\x1b[32mTrue\x1b[0m" in screen  # Ready and Synced, green
    assert "\x1b[1mNAME" in screen
    lines = [line.split() for line in ANSI.sub("", screen).splitlines()]
    assert lines[0] == ["NAME", "READY", "SYNCED", "REASON", "AGE", "DETAIL"]
    assert lines[1] == ["own", "credentials", "(spec.credentialsSecretRef)"]
    assert lines[2][:6] == ["└─", "ConnectorInstance", f"{env.namespace}/crm", "True", "True", "Available"]
    assert lines[2][-3:] == [
        f"Secret/{ACCOUNT},",
        "instance",
        str(env.instances.get("crm")["status"]["instanceID"]),
    ]  # type: ignore[index]
    assert lines[3][:3] == ["└─", "Secret", f"{env.namespace}/crm-token"]
    assert lines[4][:3] == ["└─", "Pod", f"{env.namespace}/shop-1"]
    assert lines[4][-1] == "volume"

    piped = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=30, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stdout
    assert without_ages(piped.stdout) == without_ages(ANSI.sub("", screen))

    code, plain = on_a_terminal(command, environment | {"NO_COLOR": "1"})
    assert (code, "\x1b[" in plain) == (0, False)
