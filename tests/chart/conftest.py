"""The chart installed on the real API server, and the identities that act against it.

`install_chart` runs `helm install` into a fresh release namespace and, when the admission
policies are on, returns only once the API server enforces them (policies reach the admission
plugin through an informer, a moment after they are created); after `helm uninstall` it waits
until they are gone again, so that the next test sees the cluster as its own install left it.
Users are impersonated by the admin identity (`Impersonate-User`), so RBAC and the policies'
`authorizer` judge them exactly as they would a real user; the operator acts with a real token
of the chart's ServiceAccount from the TokenRequest API.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from connector_operator.api.names import GROUP, PLURAL, VERSION
from hack.controlplane.cluster import ControlPlane
from tests.chart.support import CHART, helm
from tests.fixtures.kubernetes import api_client_for
from tests.fixtures.operator import wait_until

RELEASE = "oco"
SERVICE_ACCOUNT = "oco-open-connectors-operator"
# A user who may create ConnectorInstances in the watched namespaces, delete Secrets but read none:
# the secret-references policy is enforced once her reference to a Secret is refused.
PROBE_USER = "policy-probe"
# One who may read every Secret there but delete none: the secret-holds policy is enforced once her
# reference is refused. Each probe is refused by one policy only, so each tells about its own.
HOLD_PROBE_USER = "hold-probe"


def fresh_namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def impersonating(control_plane: ControlPlane, user: str, group: str | None = None) -> client.ApiClient:
    """An API client that acts as `user`, in `group` if given, and system:authenticated. A
    ServiceAccount's username without a group gets exactly the groups of its token from the API
    server: system:serviceaccounts, system:serviceaccounts:<namespace> and system:authenticated."""
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    api.set_default_header("Impersonate-User", user)
    if group is not None:
        api.set_default_header("Impersonate-Group", group)
    return api


def grant(
    rbac: client.RbacAuthorizationV1Api, namespace: str, user: str, rules: list[dict[str, Any]]
) -> None:
    """A Role with `rules` in `namespace`, bound to `user`."""
    name = f"{user}-{uuid.uuid4().hex[:6]}"
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


MANAGE_INSTANCES = {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["*"]}
# `delete` on the namespace's Secrets: an author the secret-holds policy lets reference any Secret
# (as Kubernetes' admin and edit roles do); for tests about another policy, so that only that one
# can refuse (when two policies refuse, the API server reports either one).
DELETE_SECRETS = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}


def instance_body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ConnectorInstance",
        "metadata": {"name": name},
        "spec": spec,
    }


def refusal(call: Callable[[], Any]) -> str | None:
    """None when `call` succeeds; the API server's message when it answers 403."""
    try:
        call()
    except ApiException as error:
        if error.status != 403:
            raise
        return str(error.body)
    return None


def denied_by_policy(call: Callable[[], Any]) -> str | None:
    message = refusal(call)
    return message if message is not None and "ValidatingAdmissionPolicy" in message else None


@dataclass
class Release:
    namespace: str
    watched: list[str]
    policies: bool

    @property
    def service_account_user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{SERVICE_ACCOUNT}"


def service_account_token(core: client.CoreV1Api, namespace: str) -> str:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token: str = core.create_namespaced_service_account_token(
        SERVICE_ACCOUNT, namespace, request
    ).status.token
    return token


def service_account_kubeconfig(
    control_plane: ControlPlane, core: client.CoreV1Api, namespace: str, path: Path
) -> Path:
    """The pod's identity, and its default namespace too: kopf posts the Events of cluster-scoped
    objects (ClusterConnectorAccounts) there, as it does in the pod."""
    written = control_plane.kubeconfig_for(service_account_token(core, namespace), path)
    kubeconfig = json.loads(written.read_text())
    kubeconfig["contexts"][0]["context"]["namespace"] = namespace
    written.write_text(json.dumps(kubeconfig, indent=2))
    return written


def service_account_client(
    control_plane: ControlPlane, core: client.CoreV1Api, release: Release, tmp_path: Path
) -> client.ApiClient:
    """An API client with a real token of the release's ServiceAccount: the pod's identity."""
    return api_client_for(control_plane, service_account_token(core, release.namespace), tmp_path)


class _Probes:
    """Requests that each policy refuses, to tell whether the API server enforces it yet."""

    def __init__(self, control_plane: ControlPlane, release: Release) -> None:
        self.namespace = release.watched[0]
        self.user = client.CustomObjectsApi(impersonating(control_plane, PROBE_USER))
        self.holder = client.CustomObjectsApi(impersonating(control_plane, HOLD_PROBE_USER))
        self.operator = client.CoreV1Api(impersonating(control_plane, release.service_account_user))

    def _refused(self, user: client.CustomObjectsApi) -> bool:
        body = instance_body("probe", {"connectorKey": "probe", "credentialsSecretRef": {"name": "probe"}})
        return bool(
            denied_by_policy(
                lambda: user.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, body, dry_run="All"
                )
            )
        )

    def reference_refused(self) -> bool:
        return self._refused(self.user)

    def hold_refused(self) -> bool:
        return self._refused(self.holder)

    def references_allowed(self) -> bool:
        return not self.reference_refused() and not self.hold_refused()

    def write_refused(self) -> bool:
        body = client.V1Secret(metadata=client.V1ObjectMeta(name="probe"))
        return bool(
            denied_by_policy(
                lambda: self.operator.create_namespaced_secret(self.namespace, body, dry_run="All")
            )
        )


@pytest.fixture
def install_chart(
    control_plane: ControlPlane, api_client: client.ApiClient, core: client.CoreV1Api, crd: None
) -> Iterator[Callable[..., Release]]:
    """`install_chart(*helm_args, namespaced=True, policies=True)` -> the installed Release."""
    installed: list[tuple[Release, _Probes]] = []
    rbac = client.RbacAuthorizationV1Api(api_client)

    def install(*args: str, namespaced: bool = True, policies: bool = True) -> Release:
        release = Release(fresh_namespace(core, "oco"), [fresh_namespace(core, "sales")], policies)
        values = [*args, "--set", f"admissionPolicies.enabled={str(policies).lower()}"]
        if namespaced:
            values += ["--set", f"operator.watchNamespaces={{{release.watched[0]}}}"]
        done = helm(
            "install", RELEASE, str(CHART), "--namespace", release.namespace, *values,
            kubeconfig=control_plane.kubeconfig,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        grant(rbac, release.watched[0], PROBE_USER, [MANAGE_INSTANCES, DELETE_SECRETS])
        read_secrets = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
        grant(rbac, release.watched[0], HOLD_PROBE_USER, [MANAGE_INSTANCES, read_secrets])
        probes = _Probes(control_plane, release)
        installed.append((release, probes))
        if policies:
            wait_until(
                lambda: probes.reference_refused() and probes.hold_refused() and probes.write_refused(),
                what="policies enforced",
            )
        return release

    yield install
    for release, probes in installed:
        done = helm(
            "uninstall", RELEASE, "--namespace", release.namespace, kubeconfig=control_plane.kubeconfig
        )
        assert done.returncode == 0, done.stderr
        if release.policies:
            # Every release in this session names its policies alike: the next test's must not
            # meet this one's, still cached by the admission plugin.
            wait_until(probes.references_allowed, what="policies gone after uninstall")
