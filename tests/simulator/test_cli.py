"""The `open-connectors-simulator` command as a process: port announcement, start-up flags, clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from open_connectors_simulator.cli import simulator_command
from open_connectors_simulator.control import SimulatorControl
from tests.fixtures.simulator import (
    TEST_ORGANIZATION_SECRET,
    TEST_USER_SECRET,
    SimulatorProcess,
    start_simulator,
)
from tests.simulator.support import assert_error, closeio_body, oauth_body

AUTH = {"Authorization": f"User {TEST_USER_SECRET}, Organization {TEST_ORGANIZATION_SECRET}"}


@pytest.fixture
def flagged_simulator(tmp_path: Path) -> Iterator[SimulatorProcess]:
    with start_simulator(
        tmp_path / "flagged.log",
        "--error-rate",
        "POST=1",
        "--error-status",
        "502",
        "--rotate-token-on-update",
        "--empty-list",
        "empty",
        "--closeio-password-required",
        "--latency-ms",
        "1",
    ) as running:
        yield running


def test_start_up_flags_are_the_baseline_that_reset_restores(flagged_simulator: SimulatorProcess) -> None:
    with (
        SimulatorControl(flagged_simulator.base_url) as control,
        httpx.Client(base_url=control.api_url, headers=AUTH, timeout=10) as client,
    ):
        faults = control.faults()
        assert faults["errorRates"] == {"POST": 1.0}
        assert faults["errorStatus"] == 502
        assert faults["rotateTokenOnUpdate"] is True
        assert faults["latencyMs"] == 1
        assert_error(client.post("/instances", json=closeio_body()), 502)
        control.set_error_rate({})
        # --closeio-password-required: username alone is no longer enough.
        assert_error(
            client.post("/instances", json=closeio_body(configuration={"username": "k"})), 400, "password"
        )
        created = client.post("/instances", json=closeio_body()).json()
        updated = client.patch(f"/instances/{created['id']}", json={"name": "x"}).json()
        assert updated["token"] != created["token"]
        control.reset()
        # --empty-list empty: no matches is [] rather than 404.
        listed = client.get("/instances")
        assert listed.status_code == 200
        assert listed.json() == []
        assert control.faults()["errorRates"] == {"POST": 1.0}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_exits_cleanly_on_signals(tmp_path: Path, signum: signal.Signals) -> None:
    running = start_simulator(tmp_path / "signal.log")
    assert httpx.get(f"{running.base_url}/_sim/health", timeout=10).status_code == 200
    running.process.send_signal(signum)
    assert running.process.wait(timeout=15) == 0
    assert running.process.stdout is not None
    assert running.process.stdout.read() == ""  # nothing but the one announcement line
    running.process.stdout.close()
    assert running.process.stdin is not None
    running.process.stdin.close()
    assert "Traceback" not in running.log_path.read_text()


def test_exits_when_its_parent_closes_stdin(tmp_path: Path) -> None:
    running = start_simulator(tmp_path / "stdin.log")
    assert running.process.stdin is not None
    running.process.stdin.close()
    assert running.process.wait(timeout=15) == 0
    assert running.process.stdout is not None
    running.process.stdout.close()


def test_refuses_to_start_on_a_taken_port(simulator_process: SimulatorProcess) -> None:
    port = simulator_process.base_url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "open_connectors_simulator", "--port", port],
        capture_output=True,
        text=True,
        env={**os.environ, "OC_SIM_ORGANIZATION_SECRET": "o", "OC_SIM_USER_SECRET": "u"},
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "listening on" not in result.stdout
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_to_start_without_secrets() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OC_SIM_")}
    result = subprocess.run(
        [sys.executable, "-m", "open_connectors_simulator", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "listening on" not in result.stdout
    assert "organization-secret" in result.stderr.lower()


def test_announced_url_is_reachable(simulator_process: SimulatorProcess) -> None:
    assert simulator_process.base_url.startswith("http://127.0.0.1:")
    port = int(simulator_process.base_url.rsplit(":", 1)[1])
    assert 0 < port < 65536
    assert httpx.get(f"{simulator_process.base_url}/_sim/health", timeout=10).json()["status"] == "ok"


@pytest.mark.parametrize("value", ["POST", "POST=2", "FETCH=0.5", "POST=abc"])
def test_bad_error_rate_flags_are_usage_errors(value: str) -> None:
    result = CliRunner().invoke(
        simulator_command, ["--organization-secret", "o", "--user-secret", "u", "--error-rate", value]
    )
    assert result.exit_code == 2
    assert "METHOD=PROBABILITY" in result.output


def test_oauth_code_ttl_flag_is_the_baseline_that_reset_restores(tmp_path: Path) -> None:
    with (
        start_simulator(tmp_path / "ttl.log", "--oauth-code-ttl", "0.3") as running,
        SimulatorControl(running.base_url) as control,
        httpx.Client(base_url=control.api_url, headers=AUTH, timeout=10) as client,
    ):
        control.set_oauth_code_ttl(60)
        control.reset()
        body = oauth_body(client)
        time.sleep(0.5)
        response = client.post("/instances", json=body)
        assert_error(response, 400, "Unable to exchange the OAuth code")
        assert "expired" in response.json()["providerMessage"]
        with pytest.raises(httpx.HTTPStatusError):
            control.set_oauth_code_ttl(0)
