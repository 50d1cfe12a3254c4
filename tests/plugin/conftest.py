"""Fixtures of the plugin's tests: `plugin`, which runs the command line in-process (click's
runner) against the session's real API server, and, for the tests that need the operator to handle
a request, the integration tier's `env` (the operator as a process, the simulator, a namespace)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner

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
