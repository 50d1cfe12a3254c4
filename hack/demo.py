"""`make demo`: the whole thing on one machine, as a user would meet it.

A local control plane, the Open Connectors simulator, the CRD, the operator as a process and
the manifests in `examples/`. It shows the ConnectorInstance becoming Ready and the token Secret
it produced, then keeps running until interrupted (explore with the printed KUBECONFIG). With
DEMO_ONCE=1 it exits 0 as soon as the Secret holds the simulator's token, non-zero otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hack.controlplane import cluster
from hack.processes import OperatorLauncher, SimulatorLauncher

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".local" / "demo"
NAMESPACE = "demo"
NAME = "acme-closeio"
TOKEN_SECRET = "acme-closeio-token"
# The values examples/account-secret.yaml carries: the simulator accepts exactly these.
USER_SECRET, ORGANIZATION_SECRET = "demo-user-secret", "demo-organization-secret"
TIMEOUT = 60.0


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def wait(predicate: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)  # polling the cluster for a human-facing demo
    raise SystemExit(f"timed out after {TIMEOUT:.0f}s waiting for {what}")


def main() -> int:
    once = os.environ.get("DEMO_ONCE") == "1"
    STATE.mkdir(parents=True, exist_ok=True)
    say("starting the local control plane (kube-apiserver + etcd)")
    with cluster.running(STATE / "controlplane") as plane:
        kubeconfig = plane.kubeconfig
        say("starting the Open Connectors simulator")
        for log in ("simulator.log", "operator.log"):
            (STATE / log).unlink(missing_ok=True)  # the children append; each demo starts afresh
        with SimulatorLauncher(
            STATE / "simulator.log",
            user_secret=USER_SECRET,
            organization_secret=ORGANIZATION_SECRET,
            args=["--latency-ms", "50"],
        ).start() as simulator:
            base_url, api_url = simulator.base_url, simulator.api_url
            say(f"simulator at {api_url}")
            kubectl(kubeconfig, "apply", "-f", str(ROOT / "crds"))
            kubectl(
                kubeconfig, "wait", "--for=condition=Established", "crd/connectorinstances.openconnectors.io"
            )
            kubectl(kubeconfig, "create", "namespace", NAMESPACE, check=False)
            say("starting the operator")
            with OperatorLauncher(
                log_path=STATE / "operator.log",
                kubeconfig=kubeconfig,
                api_url=api_url,
                metrics_port=cluster.free_port(),
            ).start():
                say(f"applying {ROOT / 'examples'}")
                print(kubectl(kubeconfig, "apply", "-n", NAMESPACE, "-f", str(ROOT / "examples")), end="")
                wait(
                    lambda: kubectl(
                        kubeconfig, "get", "connectorinstance", NAME, "-n", NAMESPACE,
                        "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                    ) == "True",
                    "the ConnectorInstance to become Ready",
                )  # fmt: skip
                print(kubectl(kubeconfig, "get", "connectorinstances", "-n", NAMESPACE), end="")
                data = json.loads(
                    kubectl(kubeconfig, "get", "secret", TOKEN_SECRET, "-n", NAMESPACE, "-o", "json")
                )
                values = {k: base64.b64decode(v).decode() for k, v in data["data"].items()}
                token = values["token"]
                say(f"token Secret {TOKEN_SECRET}: instanceID={values['instanceID']}")
                say(f"apiURL={values['apiURL']}")
                say(f"token={token[:6]}… ({len(token)} characters)")
                remote = httpx.get(f"{base_url}/_sim/instances/{values['instanceID']}", timeout=10).json()
                matches = remote.get("token") == token
                say(
                    "the Secret holds the simulator's token"
                    if matches
                    else "MISMATCH: the Secret's token is stale"
                )
                if once:
                    return 0 if matches else 1
                say(f"running; explore with: export KUBECONFIG={kubeconfig}; logs in {STATE}")
                say("Ctrl-C stops everything")
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
