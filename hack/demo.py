"""`make demo`: the whole thing on one machine, as a user would meet it.

A local control plane, the Open Connectors simulator, the CRDs, the operator as a process and
every example of `examples/`: the basic instance with its own account Secret, the instance whose
token Secret is shaped for a workload (examples/workload-secret/), and the platform team's shared
ClusterConnectorAccount with an application team's instance in its own namespace
(examples/accounts/). It shows the instances and the account becoming Ready, the token Secrets
they produced (key names, never a whole value), and ends with `kubectl openconnectors status -A`;
then it keeps running until interrupted (explore with the printed KUBECONFIG). With DEMO_ONCE=1 it
exits 0 as soon as every example is Ready, the token Secret holds the simulator's token and the
shaped Secret has its keys, non-zero otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from hack.controlplane import cluster
from hack.processes import OperatorLauncher, SimulatorLauncher

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STATE = ROOT / ".local" / "demo"
NAMESPACE = "demo"
# examples/accounts/platform-team.yaml keeps the shared account's Secret in the operator's own
# namespace, where a ClusterConnectorAccount's Secret may live (README, "Accounts").
OPERATOR_NAMESPACE = "open-connectors-operator"
NAME = "acme-closeio"
TOKEN_SECRET = "acme-closeio-token"
# The shaped token Secret of examples/workload-secret/closeio.yaml and the keys it must hold.
SHAPED_SECRET = "acme-closeio-credentials"
SHAPED_KEYS = {"token", "instanceID", "apiURL", "OC_AUTHORIZATION", "config.json"}
# Every ConnectorInstance of the examples, and the shared account, that must become Ready.
INSTANCES = [(NAMESPACE, NAME), (NAMESPACE, "acme-closeio-shop"), ("sales", "sales-closeio")]
CLUSTER_ACCOUNT = "shared"
# The values examples/account-secret.yaml and examples/accounts/platform-team.yaml carry: the
# simulator accepts exactly these.
USER_SECRET, ORGANIZATION_SECRET = "demo-user-secret", "demo-organization-secret"
TIMEOUT = 90.0
PLUGIN = "kubectl-openconnectors"
PLURALS = ("connectorinstances", "connectoraccounts", "clusterconnectoraccounts")


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)  # polling the cluster for a human-facing demo
    raise SystemExit(f"timed out after {TIMEOUT:.0f}s waiting for {what}")


def established(kubeconfig: Path, crd: str) -> bool:
    jsonpath = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
    return kubectl(kubeconfig, "get", crd, "-o", jsonpath, check=False) == "True"


def ready(kubeconfig: Path, resource: str, *namespace: str) -> bool:
    jsonpath = "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
    return kubectl(kubeconfig, "get", resource, *namespace, "-o", jsonpath, check=False) == "True"


def apply_examples(kubeconfig: Path) -> None:
    """The three examples, each as its README section applies it."""
    say(f"applying {EXAMPLES} (an instance with its own account Secret) in namespace {NAMESPACE}")
    print(kubectl(kubeconfig, "apply", "-n", NAMESPACE, "-f", str(EXAMPLES)), end="")
    say(f"applying {EXAMPLES / 'workload-secret'} (a token Secret shaped for a workload)")
    print(kubectl(kubeconfig, "apply", "-n", NAMESPACE, "-f", str(EXAMPLES / "workload-secret")), end="")
    say(f"applying {EXAMPLES / 'accounts'}: the platform team's account, then an application team")
    accounts = EXAMPLES / "accounts"
    files = ("-f", str(accounts / "platform-team.yaml"), "-f", str(accounts / "application-team.yaml"))
    print(kubectl(kubeconfig, "apply", *files), end="")


def await_examples(kubeconfig: Path) -> None:
    wait(lambda: ready(kubeconfig, f"clusterconnectoraccount/{CLUSTER_ACCOUNT}"), "the account to be Ready")
    for namespace, name in INSTANCES:
        instance = functools.partial(ready, kubeconfig, f"connectorinstance/{name}", "-n", namespace)
        wait(instance, f"ConnectorInstance {namespace}/{name} to become Ready")
    print(kubectl(kubeconfig, "get", "clusterconnectoraccounts"), end="")
    print(kubectl(kubeconfig, "get", "connectorinstances", "-A"), end="")


def secret_values(kubeconfig: Path, name: str) -> dict[str, str]:
    data = json.loads(kubectl(kubeconfig, "get", "secret", name, "-n", NAMESPACE, "-o", "json"))
    return {k: base64.b64decode(v).decode() for k, v in (data.get("data") or {}).items()}


def check_token(kubeconfig: Path, base_url: str) -> bool:
    """The basic example's token Secret holds the token the simulator issued."""
    values = secret_values(kubeconfig, TOKEN_SECRET)
    token = values["token"]
    say(f"token Secret {TOKEN_SECRET}: instanceID={values['instanceID']}")
    say(f"apiURL={values['apiURL']}")
    say(f"token={token[:6]}… ({len(token)} characters)")
    remote = httpx.get(f"{base_url}/_sim/instances/{values['instanceID']}", timeout=10).json()
    matches = bool(remote.get("token") == token)
    say("the Secret holds the simulator's token" if matches else "MISMATCH: the Secret's token is stale")
    return matches


def check_shaped_secret(kubeconfig: Path) -> bool:
    """The workload's Secret has its template's keys, the header rendered with this token."""
    values = secret_values(kubeconfig, SHAPED_SECRET)
    header = f"User {USER_SECRET}, Organization {ORGANIZATION_SECRET}, Element {values.get('token')}"
    shaped = values.keys() >= SHAPED_KEYS and values.get("OC_AUTHORIZATION") == header
    say(f"shaped token Secret {SHAPED_SECRET}: keys {', '.join(sorted(values))}")
    say("OC_AUTHORIZATION is the whole header" if shaped else "MISSING: the shaped Secret lacks its keys")
    return shaped


def plugin_status(kubeconfig: Path) -> bool:
    """`kubectl openconnectors status -A` (the plugin's console script beside this interpreter,
    as `make venv` installs it); False if it is there and fails."""
    script = Path(sys.executable).parent / PLUGIN
    command = str(script) if script.exists() else shutil.which(PLUGIN)
    if command is None:
        say(f"{PLUGIN} is not installed (make venv installs it): no status tree")
        return True
    say("kubectl openconnectors status -A")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    result = subprocess.run([command, "status", "-A"], env=env, capture_output=True, text=True, check=False)
    print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        say(f"{PLUGIN} status -A exited {result.returncode}: {result.stderr.strip()}")
    return result.returncode == 0


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
            crds = [f"crd/{plural}.openconnectors.io" for plural in PLURALS]
            # Polled, not `kubectl wait`: a CRD whose status has no conditions yet makes kubectl
            # wait fail at once ("<nil> is of the type <nil>"), which a clean-clone run met.
            for crd in crds:
                wait(functools.partial(established, kubeconfig, crd), crd)
            for namespace in (NAMESPACE, OPERATOR_NAMESPACE):
                kubectl(kubeconfig, "create", "namespace", namespace, check=False)
            say(f"starting the operator (its own namespace: {OPERATOR_NAMESPACE})")
            with OperatorLauncher(
                log_path=STATE / "operator.log",
                kubeconfig=kubeconfig,
                api_url=api_url,
                metrics_port=cluster.free_port(),
                args=["--operator-namespace", OPERATOR_NAMESPACE],
            ).start():
                apply_examples(kubeconfig)
                await_examples(kubeconfig)
                fine = check_token(kubeconfig, base_url)
                fine = check_shaped_secret(kubeconfig) and fine
                fine = plugin_status(kubeconfig) and fine
                if once:
                    return 0 if fine else 1
                say(f"running; explore with: export KUBECONFIG={kubeconfig}; logs in {STATE}")
                say("Ctrl-C stops everything")
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
