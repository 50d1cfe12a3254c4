"""Flux's view of ConnectorInstance: what kstatus computes for every state the operator writes.

Flux's `wait` and `healthChecks` read custom resources through kstatus
(`sigs.k8s.io/cli-utils/pkg/kstatus/status`; Flux builds a fork with the same rules). This runs
the library itself: hack/kstatus/main.go, built once per session (then cached by hack/kstatus/build.py)
and fed each object of tests/gitops/objects.py on stdin.

Covers: Ready -> Current; generation ahead of observedGeneration, waiting for a Secret and retrying
(also with Ready still True) -> InProgress; stalled -> Failed, fast, with the condition's message;
being deleted, blocked or not -> Terminating; YAML input as well as JSON. Where kstatus reads an
object differently from what its conditions intend, the test says so instead of following kstatus:
a new object without status is `Current` to kstatus (the `new_without_status` case, and why the
CRD defaults `status.observedGeneration`). The accounts of tests/gitops/accounts.py, both kinds:
verified -> Current; new, waiting for its Secret, circuit open (Ready False, Reconciling True) and
in a rotation's grace period -> InProgress; credentials refused -> Failed; deleted while in use ->
Terminating.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from connector_operator.domain.outcome import Outcome
from tests.gitops import accounts, objects

Kstatus = Callable[[str], dict[str, str]]


@pytest.fixture(scope="session")
def kstatus_binary() -> Path:
    from hack.kstatus.build import ensure_built

    try:
        return ensure_built()
    except SystemExit as error:  # `go` missing or the build failed: one line, not a traceback
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def kstatus(kstatus_binary: Path) -> Kstatus:
    def compute(document: str) -> dict[str, str]:
        result = subprocess.run(
            [str(kstatus_binary)], input=document, capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    return compute


def reading(kstatus: Kstatus, name: str) -> dict[str, str]:
    return kstatus(json.dumps(objects.state(name)))


READY = {"status": "Current", "message": "Resource is Ready"}
AHEAD = {
    "status": "InProgress",
    "message": "ConnectorInstance generation is 2, but latest observed generation is 1",
}
TERMINATING = {"status": "Terminating", "message": "Resource scheduled for deletion"}


def in_progress(outcome: Outcome) -> dict[str, str]:
    return {"status": "InProgress", "message": outcome.message}


def failed(outcome: Outcome) -> dict[str, str]:
    return {"status": "Failed", "message": outcome.message}


EXPECTED: dict[str, Callable[[], dict[str, str]]] = {
    "ready": lambda: READY,
    "ready_after_spec_change": lambda: READY,
    "ready_after_transient_failure": lambda: READY,
    "new": lambda: {
        "status": "InProgress",
        "message": "ConnectorInstance generation is 1, but latest observed generation is 0",
    },
    # Why the CRD defaults status.observedGeneration: with no status at all, kstatus falls back to
    # "Current", and a Flux health check would pass before the operator has done anything.
    "new_without_status": lambda: {"status": "Current", "message": "Resource is current"},
    "generation_ahead_of_observed": lambda: AHEAD,
    "stalled_then_spec_changed": lambda: AHEAD,
    # Not handled yet, so observedGeneration has not moved: kstatus says so before any condition.
    "waiting_for_secret_after_spec_change": lambda: AHEAD,
    "api_unavailable_after_update_ready_true": lambda: AHEAD,
    "rate_limited_after_update_ready_true": lambda: AHEAD,
    # No observedGeneration yet: kstatus skips that check and reads Reconciling=True.
    "waiting_for_secret_new": lambda: in_progress(objects.waiting_for_secret(ready=False)),
    "api_unavailable_creating": lambda: in_progress(objects.api_unavailable(ready=False)),
    # Generation handled, Ready still True, a periodic check being retried.
    "rate_limited_on_resync_ready_true": lambda: in_progress(objects.rate_limited(ready=True)),
    "stalled_configuration_rejected": lambda: failed(objects.configuration_rejected()),
    "stalled_credentials_rejected_ready_true": lambda: failed(objects.credentials_rejected(ready=True)),
    "stalled_secret_conflict": lambda: failed(objects.secret_conflict()),
    "stalled_instance_invalid": lambda: failed(objects.instance_invalid()),
    "stalled_adoption_conflict": lambda: failed(objects.adoption_conflict()),
    # Paused with its generation handled: Ready as it was, Current. A spec changed while paused is
    # not applied, and kstatus says so (a Flux health check waits until the pause is lifted).
    "paused": lambda: READY,
    "paused_then_spec_changed": lambda: AHEAD,
    # kstatus checks deletionTimestamp first: a blocked deletion is Terminating too, never Failed.
    "deleting": lambda: TERMINATING,
    "deleting_retrying": lambda: TERMINATING,
    "deleting_after_stall": lambda: TERMINATING,
    "deletion_blocked": lambda: TERMINATING,
    "deletion_credentials_rejected": lambda: TERMINATING,
}


def test_every_state_has_an_expectation() -> None:
    assert set(EXPECTED) == set(objects.STATES)


@pytest.mark.parametrize("name", EXPECTED)
def test_kstatus_of_each_state(kstatus: Kstatus, name: str) -> None:
    assert reading(kstatus, name) == EXPECTED[name]()


def test_stalled_fails_fast_even_while_ready_is_true(kstatus: Kstatus) -> None:
    obj = objects.state("stalled_credentials_rejected_ready_true")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert kstatus(json.dumps(obj))["status"] == "Failed"


def test_transient_retries_are_never_failed(kstatus: Kstatus) -> None:
    retried = [
        n for n in objects.STATES if n.startswith(("waiting_for_secret", "api_unavailable", "rate_limited"))
    ]
    assert len(retried) == 6
    assert {n: reading(kstatus, n)["status"] for n in retried} == dict.fromkeys(retried, "InProgress")


def test_yaml_input_reads_like_json(kstatus: Kstatus) -> None:
    obj = objects.state("stalled_secret_conflict")
    assert kstatus(yaml.safe_dump(obj)) == kstatus(json.dumps(obj)) == failed(objects.secret_conflict())


def test_invalid_input_is_an_error(kstatus_binary: Path) -> None:
    result = subprocess.run(
        [str(kstatus_binary)], input="{not an object", capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 1
    assert result.stderr.startswith("kstatus: ")
    assert result.stdout == ""


# --- accounts -------------------------------------------------------------------------------------


def account_ahead(kind: str) -> dict[str, str]:
    return {"status": "InProgress", "message": f"{kind} generation is 1, but latest observed generation is 0"}


ACCOUNT_EXPECTED: dict[str, Callable[[str], dict[str, str]]] = {
    # The CRD's status default: not Current before the operator's first write.
    "new": account_ahead,
    "verified": lambda _: READY,
    # Retried outcomes leave observedGeneration behind on a new account: kstatus says so first.
    "waiting_for_secret": account_ahead,
    "circuit_open_new": account_ahead,
    # Generation handled; the platform fails now: Reconciling=True, never Failed.
    "circuit_open_after_verified": lambda _: in_progress(accounts.circuit_open()),
    "rotation_grace": lambda _: in_progress(accounts.rotation_grace()),
    "credentials_rejected": lambda _: failed(accounts.credentials_rejected()),
    "deleting_in_use": lambda _: TERMINATING,
}


def test_every_account_state_has_an_expectation() -> None:
    assert set(ACCOUNT_EXPECTED) == set(accounts.STATES)


@pytest.mark.parametrize("kind", accounts.KINDS)
@pytest.mark.parametrize("name", ACCOUNT_EXPECTED)
def test_kstatus_of_each_account_state(kstatus: Kstatus, kind: str, name: str) -> None:
    assert kstatus(json.dumps(accounts.state(kind, name))) == ACCOUNT_EXPECTED[name](kind)
