"""kube/incluster.py: the API server from KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector_operator.kube.incluster import login_from_environment, server_from_environment

POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@pytest.mark.parametrize(
    ("environ", "server"),
    [
        (POD, "https://10.96.0.1:443"),
        ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, "https://[fd00::1]:6443"),
        (
            {"KUBERNETES_SERVICE_HOST": "api.internal", "KUBERNETES_SERVICE_PORT": "6443"},
            "https://api.internal:6443",
        ),
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, None),
        ({"KUBERNETES_SERVICE_PORT": "443"}, None),
        ({"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""}, None),
        ({}, None),
    ],
)
def test_server_from_environment(environ: dict[str, str], server: str | None) -> None:
    assert server_from_environment(environ) == server


def account(directory: Path, **files: str) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name.replace("_", ".")).write_text(text)
    return directory


def test_a_pod_logs_in_with_its_token_ca_and_namespace(tmp_path: Path) -> None:
    directory = account(tmp_path / "sa", token="the-token\n", ca_crt="PEM", namespace="oco\n")
    info = login_from_environment(trust_env=False, environ=POD, account_dir=directory)
    assert info is not None
    assert info.server == "https://10.96.0.1:443"
    assert info.token == "the-token"
    assert info.ca_path == str(directory / "ca.crt")
    assert info.default_namespace == "oco"


def test_without_ca_or_namespace_files_those_stay_unset(tmp_path: Path) -> None:
    info = login_from_environment(
        trust_env=True, environ=POD, account_dir=account(tmp_path / "sa", token="t")
    )
    assert info is not None
    assert (info.ca_path, info.default_namespace, info.trust_env) == (None, None, True)


def test_not_a_pod_without_the_variables_or_the_token(tmp_path: Path) -> None:
    """The caller then falls back on kopf's own login (kubernetes.default.svc), then the kubeconfig."""
    with_token = account(tmp_path / "sa", token="t")
    assert login_from_environment(trust_env=False, environ={}, account_dir=with_token) is None
    assert login_from_environment(trust_env=False, environ=POD, account_dir=tmp_path / "missing") is None
