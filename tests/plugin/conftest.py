"""Fixtures of the plugin's tests: `plugin`, which runs the command line in-process (click's
runner) against the session's real API server; `login_as`, a kubeconfig of a user with only the
rights a test gives it; and, for the tests that need the operator to handle a request, the
integration tier's `env` (the operator as a process, the simulator, a namespace)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from kubectl_openconnectors.cli import cli
from tests.integration.conftest import env, other_namespace

__all__ = ["Run", "env", "other_namespace"]


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def invoke(args: list[str], stdin: str | None = None) -> Run:
    result = CliRunner().invoke(cli, args, input=stdin, prog_name="kubectl openconnectors")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug, not an exit code
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def plugin(control_plane: ControlPlane, crd: None) -> Callable[..., Run]:
    """`plugin("status", "-n", ns)`: the command with the session's kubeconfig (given as a flag:
    the kubernetes package reads $KUBECONFIG once, at import)."""

    def run(command: str, *args: str, stdin: str | None = None) -> Run:
        return invoke([command, "--kubeconfig", str(control_plane.kubeconfig), *args], stdin)

    return run


Rules = list[dict[str, Any]]


@pytest.fixture
def login_as(
    control_plane: ControlPlane, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[Callable[[Rules], Path]]:
    """`login_as(rules)`: the kubeconfig of a new ServiceAccount that a ClusterRole of these rules
    is bound to, logged in with a real token (RBAC judges it as any user). Role and binding are
    removed at the end (they are cluster-wide; the namespace is the test's own)."""
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    made: list[str] = []

    def login(rules: Rules) -> Path:
        name = f"user-{uuid.uuid4().hex[:6]}"
        core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
        )
        rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
        made.append(name)
        binding = {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }
        rbac.create_cluster_role_binding(binding)
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
        token = core.create_namespaced_service_account_token(name, namespace, request).status.token
        return control_plane.kubeconfig_for(token, tmp_path / f"kubeconfig-{name}")

    yield login
    for name in made:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)
