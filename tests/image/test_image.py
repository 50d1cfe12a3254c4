"""The operator's image, built from the Dockerfile unchanged, run as the chart's pod would run it.

The container gets exactly the security context, resources, environment, volumes, probes and grace
period `helm template` renders (podspec.py), the chart's ServiceAccount's token mounted where the
kubelet mounts it, and `KUBERNETES_SERVICE_HOST`/`PORT` naming the real API server; it shares the
host's network, where kubernetes.default.svc resolves nowhere. So it can only log in the way
kube/incluster.py does, and everything it does passes the chart's RBAC and admission policies.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api.names import GROUP, PLURAL, VERSION
from connector_operator.shutdown import STOP_GRACE
from hack.image.podman import Podman
from open_connectors_simulator.control import SimulatorControl
from tests.fixtures.hostile_platform import HostilePlatform
from tests.fixtures.operator import Instances, wait_until
from tests.fixtures.waiting import stays
from tests.image.support import ChartPod, Container, example_of_kind, examples, probe_passes
from tests.integration.support import secret_data

# The first run on a fresh machine installs podman, builds the stand-in base and the image.
# One worker runs them all (`make test` runs the suite on several): the image is built once.
pytestmark = [pytest.mark.timeout(1800), pytest.mark.xdist_group("image")]

EXAMPLE = example_of_kind("ConnectorInstance")
PEERING_NAME = "open-connectors-operator"  # the chart's peering.name default


def python_in(podman: Podman, image: str, code: str) -> tuple[int, str]:
    done = podman.run(
        "run", "--rm", "--network", "host", "--entrypoint", "python", image, "-c", code, check=False
    )
    return done.returncode, done.stdout + done.stderr


def apply_examples(api_client: client.ApiClient, namespace: str) -> None:
    """examples/ as a user applies them (the Secrets, the ConnectorInstance)."""
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    for doc in examples():
        if doc["kind"] == "Secret":
            core.create_namespaced_secret(namespace, doc)
        else:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)


def example_like(name: str) -> dict[str, Any]:
    """The example's spec for another object (its own token Secret)."""
    return {**EXAMPLE["spec"], "tokenSecret": {"name": f"{name}-token"}}


def proc_status(container: Container) -> dict[str, list[str]]:
    """/proc/1/status of the container's PID 1 (the operator): field -> values."""
    done = container.exec("cat", "/proc/1/status")
    assert done.returncode == 0, done.stderr
    return {
        key: value.split() for key, _, value in (line.partition(":") for line in done.stdout.splitlines())
    }


def peers(custom: client.CustomObjectsApi) -> set[str]:
    """The identities with a keep-alive record in the chart's ClusterKopfPeering (the one peering
    object, also for the namespaced install: kube/peering.py)."""
    try:
        body = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", PEERING_NAME)
    except ApiException as error:
        if error.status == 404:
            return set()
        raise
    return set((body.get("status") or {}).keys())


def test_the_image_carries_the_operator_and_nothing_else(podman: Podman, operator_image: str) -> None:
    code, output = python_in(podman, operator_image, "import connector_operator.run, kopf, aiohttp, httpx")
    assert code == 0, output
    # The runtime lock does not carry the kubernetes package, so kopf cannot load it either; no
    # simulator, no tests, no development tools.
    # Nor the kubectl plugin: a user's tool, not the operator's (nor its console script, below).
    for module in (
        "kubernetes",
        "kubectl_openconnectors",
        "open_connectors_simulator",
        "tests",
        "hack",
        "pytest",
        "mypy",
    ):
        code, output = python_in(podman, operator_image, f"import {module}")
        assert code == 1, (module, output)
        assert f"No module named '{module}'" in output
    done = podman.run(
        "run", "--rm", "--entrypoint", "sh", operator_image, "-c",
        "for c in gcc cc make git kubectl-openconnectors; do command -v $c; done; "
        "ls -d /src /opt/venv/src 2>/dev/null; true",
    )  # fmt: skip
    assert done.stdout.strip() == "", done.stdout
    user = podman.run("image", "inspect", "--format", "{{.Config.User}}", operator_image).stdout.strip()
    assert user == "65532:65532"


def test_runs_as_the_charts_pod_and_stops_on_sigterm_mid_request(
    chart_pod: ChartPod, api_client: client.ApiClient, core: client.CoreV1Api
) -> None:
    watched = chart_pod.watched
    apply_examples(api_client, watched)
    container = chart_pod.start("oco-0")
    healthy = container.wait_ready()
    instances = Instances(api_client, watched)
    instances.wait_ready(EXAMPLE["metadata"]["name"])
    ready = time.monotonic() - container.started_at
    print(f"\nstart to /healthz: {healthy:.2f}s, start to the example Ready: {ready:.2f}s")
    token = secret_data(core, watched, EXAMPLE["spec"]["tokenSecret"]["name"])
    assert token is not None
    assert token["token"]

    # The probes pass as the kubelet makes them; the metrics answer.
    for kind, probe in container.run.probes.items():
        assert probe_passes(probe), kind
    with urllib.request.urlopen(container.url("metrics", "/metrics"), timeout=5) as response:
        assert b"oco_reconciles_total" in response.read()

    # PID 1 is the operator, as uid and gid 65532, with no capability at all and no way to gain one.
    status = proc_status(container)
    assert status["Uid"] == ["65532"] * 4
    assert status["Gid"] == ["65532"] * 4
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capabilities][0], 16) == 0, capabilities
    assert status["NoNewPrivs"] == ["1"]
    # The root filesystem is read-only; /tmp (the chart's emptyDir) is the one writable place.
    probe_writes = (
        "import os\nfor path in ('/probe', '/opt/venv/probe', '/etc/probe', '/tmp/probe'):\n"
        "    try:\n        open(path, 'w').close(); print(path, 'written')\n"
        "    except OSError as error: print(path, os.strerror(error.errno))\n"
    )
    written = container.exec("python", "-c", probe_writes).stdout.splitlines()
    assert written == [
        "/probe Read-only file system", "/opt/venv/probe Read-only file system",
        "/etc/probe Read-only file system", "/tmp/probe written",
    ]  # fmt: skip
    # It logged in from KUBERNETES_SERVICE_HOST/PORT: kopf's kubernetes.default.svc resolves nowhere here.
    lookup = container.exec(
        "python", "-c", "import socket; socket.getaddrinfo('kubernetes.default.svc', 443)"
    )
    assert lookup.returncode != 0
    assert "gaierror" in lookup.stderr

    # SIGTERM while the operator waits on a platform that does not answer.
    with SimulatorControl(chart_pod.api_url.split("/elements")[0]) as simulator:
        simulator.hang_next("PUT")
        instances.patch_spec(EXAMPLE["metadata"]["name"], {"tags": ["crm", "updated"]})
        wait_until(lambda: any(r["method"] == "PUT" for r in simulator.requests()), what="the PUT in flight")
    seconds, exit_code = container.stop()
    print(f"stopped mid-request in {seconds:.2f}s (grace period {container.run.grace_seconds}s)")
    assert exit_code == 0, container.logs()[-3000:]  # it stopped itself: 137 would be the SIGKILL
    assert seconds < STOP_GRACE + 2 < container.run.grace_seconds / 3
    assert "Signal SIGTERM is received" in container.logs()


@pytest.mark.slow
def test_a_second_copy_pauses_and_takes_over_when_the_first_stops(
    chart_pod: ChartPod, api_client: client.ApiClient
) -> None:
    watched = chart_pod.watched
    custom = client.CustomObjectsApi(api_client)
    instances = Instances(api_client, watched)
    apply_examples(api_client, watched)
    first = chart_pod.start("oco-a")
    first.wait_ready()
    instances.wait_ready(EXAMPLE["metadata"]["name"])
    # The second copy talks to a platform of its own: whatever it does shows there.
    with HostilePlatform.running() as second_platform:
        second = chart_pod.start("oco-b", api_url=second_platform.api_url)
        second.wait_ready()
        wait_until(lambda: {"oco-a", "oco-b"} <= peers(custom), what="both copies' peering records")

        # A new object: the first copy makes it Ready; the second, paused, does nothing at all.
        created = time.monotonic()
        instances.create("two", example_like("two"))
        instances.wait_ready("two")
        latency = time.monotonic() - created
        stays(lambda: second_platform.count() == 0, seconds=2 + 3 * latency, what="the second copy's silence")
        assert '"name": "two"' not in second.logs()

        # The first stops: it withdraws its record, and the second takes over at once.
        seconds, exit_code = first.stop()
        assert exit_code == 0
        assert seconds < STOP_GRACE + 2
        stopped = time.monotonic()
        wait_until(lambda: "oco-a" not in peers(custom), what="the first copy's record withdrawn")
        instances.create("three", example_like("three"))
        instances.wait_ready("three")
        assert second_platform.count("POST", "/instances") >= 1
        took = time.monotonic() - stopped
        print(f"\nthe second copy made a new object Ready {took:.2f}s after the first stopped")
    second.stop()
