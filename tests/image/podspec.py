"""The chart's Deployment, as `helm template` renders it, turned into `podman run` options: what the
kubelet would do with the pod, as far as one container on this machine can show it.

Nothing is restated here: the security context, resources, environment, volumes, probes and the
grace period all come from the rendered object, and a field this translation does not know fails
the translation (so a new chart setting cannot go untested unnoticed). What the kubelet adds is
added as the kubelet adds it: the ServiceAccount's token, CA and namespace at
/var/run/secrets/kubernetes.io/serviceaccount, `KUBERNETES_SERVICE_HOST`/`PORT` naming the API
server, and the downward API's pod name. The network is the host's (no CNI here), so the API
server and the simulator on loopback are reachable, and kubernetes.default.svc resolves nowhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# Scheduling only: they choose a node, and there is one.
SCHEDULING_FIELDS = {"nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"}
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {None: 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_FACTORS.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})


class Unsupported(ValueError):
    """A field of the pod this translation does not know how to run."""


def quantity(value: str | int) -> float:
    """A Kubernetes resource quantity (`384Mi`, `50m`, `1`) as a number."""
    match = _QUANTITY.match(str(value))
    if match is None:
        raise Unsupported(f"quantity {value!r}")
    return float(match.group(1)) * _FACTORS[match.group(2)]


@dataclass(frozen=True)
class Probe:
    path: str
    port: int
    period: float
    timeout: float
    initial_delay: float
    failure_threshold: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


@dataclass
class PodRun:
    """`podman run OPTIONS IMAGE ARGS` for the pod's one container, and what the kubelet would use."""

    options: list[str]
    image: str
    args: list[str]
    grace_seconds: int
    probes: dict[str, Probe]
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)

    def command(self, name: str) -> list[str]:
        return ["run", "--detach", "--name", name, *self.options, self.image, *self.args]


def _check(fields: dict[str, Any], known: set[str], where: str) -> None:
    unknown = set(fields) - known
    if unknown:
        raise Unsupported(f"{where}: {sorted(unknown)}")


def pod_run(
    deployment: dict[str, Any],
    *,
    pod_name: str,
    namespace: str,
    service_account_dir: Path,
    api_host: str,
    api_port: int,
) -> PodRun:
    pod = deployment["spec"]["template"]["spec"]
    _check(
        pod,
        {"serviceAccountName", "automountServiceAccountToken", "terminationGracePeriodSeconds",
         "securityContext", "containers", "volumes", "dnsConfig"} | SCHEDULING_FIELDS,
        "pod spec",
    )  # fmt: skip
    [container] = pod["containers"]
    _check(
        container,
        {"name", "image", "imagePullPolicy", "args", "env", "ports", "livenessProbe", "readinessProbe",
         "securityContext", "resources", "volumeMounts"},
        "container",
    )  # fmt: skip
    # The kubelet adds no /etc/passwd entry for the pod's uid (podman would): what looks up the user
    # (Python's getpass, kopf's identity without POD_ID) must cope without one, as in a cluster.
    options = ["--network", "host", "--pull", "never", "--passwd=false"]
    options += _security(pod.get("securityContext", {}), container.get("securityContext", {}))
    options += _resources(container.get("resources", {}))
    options += _volumes(pod.get("volumes", []), container.get("volumeMounts", []))
    options += _dns(pod.get("dnsConfig", {}))
    env = _env(container.get("env", []), pod_name, namespace)
    # What the kubelet adds: the API server's Service in the environment, the token mounted.
    env |= {
        "KUBERNETES_SERVICE_HOST": api_host,
        "KUBERNETES_SERVICE_PORT": str(api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(api_port),
        "KUBERNETES_PORT": f"tcp://{api_host}:{api_port}",
    }
    if pod.get("automountServiceAccountToken", True):
        options += ["--volume", f"{service_account_dir}:{SERVICE_ACCOUNT_MOUNT}:ro"]
    for name, value in env.items():
        options += ["--env", f"{name}={value}"]
    ports = {p["name"]: int(p["containerPort"]) for p in container.get("ports", [])}
    probes = {
        kind: _probe(container[kind], ports)
        for kind in ("livenessProbe", "readinessProbe")
        if kind in container
    }
    return PodRun(
        options=options,
        image=container["image"],
        args=list(container.get("args", [])),
        grace_seconds=int(pod.get("terminationGracePeriodSeconds", 30)),
        probes=probes,
        ports=ports,
        env=env,
    )


def _security(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    _check(
        pod, {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"}, "pod securityContext"
    )
    _check(
        container,
        {"allowPrivilegeEscalation", "readOnlyRootFilesystem", "capabilities", "runAsNonRoot", "runAsUser",
         "runAsGroup"},
        "container securityContext",
    )  # fmt: skip
    merged = {**pod, **container}
    options: list[str] = []
    if "runAsUser" in merged:
        user = int(merged["runAsUser"])
        if merged.get("runAsNonRoot") and user == 0:
            raise Unsupported("runAsNonRoot with runAsUser 0: the kubelet would refuse to start it")
        options += ["--user", f"{user}:{int(merged.get('runAsGroup', user))}"]
    elif merged.get("runAsNonRoot"):
        raise Unsupported("runAsNonRoot without runAsUser: the image's user would have to be checked")
    if "fsGroup" in pod:
        options += ["--group-add", str(int(pod["fsGroup"]))]
    seccomp = pod.get("seccompProfile", {"type": "RuntimeDefault"})
    if seccomp != {"type": "RuntimeDefault"}:
        raise Unsupported(f"seccompProfile {seccomp}")  # podman's default profile is the runtime's
    if merged.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    if merged.get("readOnlyRootFilesystem"):
        # Without --read-only-tmpfs=false podman would add writable /tmp, /var/tmp and /run itself.
        options += ["--read-only", "--read-only-tmpfs=false"]
    capabilities = container.get("capabilities", {})
    _check(capabilities, {"drop", "add"}, "capabilities")
    options += [f"--cap-drop={cap}" for cap in capabilities.get("drop", [])]
    options += [f"--cap-add={cap}" for cap in capabilities.get("add", [])]
    return options


def _resources(resources: dict[str, Any]) -> list[str]:
    _check(resources, {"limits", "requests"}, "resources")
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    _check(limits, {"memory", "cpu"}, "limits")
    _check(requests, {"memory", "cpu"}, "requests")
    options: list[str] = []
    if "memory" in limits:
        options += ["--memory", str(int(quantity(limits["memory"])))]
    if "cpu" in limits:
        options += ["--cpus", str(quantity(limits["cpu"]))]
    if "cpu" in requests:  # the kubelet's cpu.shares for a request: 1024 per core, at least 2
        options += ["--cpu-shares", str(max(2, int(quantity(requests["cpu"]) * 1024)))]
    if "memory" in requests:
        options += ["--memory-reservation", str(int(quantity(requests["memory"])))]
    return options


def _volumes(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> list[str]:
    by_name = {volume["name"]: volume for volume in volumes}
    options: list[str] = []
    for mount in mounts:
        _check(mount, {"name", "mountPath", "readOnly"}, "volumeMount")
        volume = by_name[mount["name"]]
        _check(volume, {"name", "emptyDir"}, f"volume {mount['name']}")
        empty_dir = volume["emptyDir"] or {}
        _check(empty_dir, {"sizeLimit", "medium"}, "emptyDir")
        size = f",size={int(quantity(empty_dir['sizeLimit']))}" if "sizeLimit" in empty_dir else ""
        # An emptyDir is writable by everyone in the pod (mode 0777; kubelet), and starts empty.
        options += ["--tmpfs", f"{mount['mountPath']}:rw,nosuid,nodev,mode=1777{size}"]
    return options


def _dns(config: dict[str, Any]) -> list[str]:
    """The pod's dnsConfig as the kubelet writes it into resolv.conf: its options (ndots:1) and
    search domains on top of the node's (here the host's) resolver configuration."""
    _check(config, {"options", "searches", "nameservers"}, "dnsConfig")
    options: list[str] = []
    for option in config.get("options", []):
        _check(option, {"name", "value"}, "dnsConfig option")
        value = f":{option['value']}" if option.get("value") is not None else ""
        options += ["--dns-option", f"{option['name']}{value}"]
    options += [arg for domain in config.get("searches", []) for arg in ("--dns-search", domain)]
    options += [arg for server in config.get("nameservers", []) for arg in ("--dns", server)]
    return options


def _env(entries: list[dict[str, Any]], pod_name: str, namespace: str) -> dict[str, str]:
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace}
    env: dict[str, str] = {}
    for entry in entries:
        _check(entry, {"name", "value", "valueFrom"}, f"env {entry.get('name')}")
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
            continue
        source = entry["valueFrom"]
        _check(source, {"fieldRef"}, f"env {entry['name']} valueFrom")
        path = source["fieldRef"]["fieldPath"]
        if path not in fields:
            raise Unsupported(f"env {entry['name']}: fieldRef {path}")
        env[entry["name"]] = fields[path]
    return env


def _probe(probe: dict[str, Any], ports: dict[str, int]) -> Probe:
    _check(
        probe,
        {
            "httpGet",
            "initialDelaySeconds",
            "periodSeconds",
            "timeoutSeconds",
            "failureThreshold",
            "successThreshold",
        },
        "probe",
    )
    get = probe["httpGet"]
    _check(get, {"path", "port"}, "httpGet")
    port = get["port"]
    return Probe(
        path=get["path"],
        port=ports[port] if isinstance(port, str) else int(port),
        period=float(probe.get("periodSeconds", 10)),
        timeout=float(probe.get("timeoutSeconds", 1)),
        initial_delay=float(probe.get("initialDelaySeconds", 0)),
        failure_threshold=int(probe.get("failureThreshold", 3)),
    )
