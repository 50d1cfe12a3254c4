"""Argo CD health for ConnectorInstance and the accounts: charts/open-connectors-operator/argocd/health.lua.

The script runs as Argo CD runs it: Lua 5.1 (Argo CD embeds gopher-lua, a Lua 5.1), with the
object as the global `obj`, returning `hs` with `status` and `message`. Here it runs in an
environment holding only `obj` and the base functions and libraries Argo CD provides, so a
dependency on anything else, or a stray global, shows up.

Covers every state in tests/gitops/objects.py (conditions written by the operator's own
functions): Healthy when ready; Progressing while a generation is not handled yet, while waiting
for a Secret and while retrying transient failures (also with Ready still True); Degraded when
stalled; Progressing while deleting, Degraded when the deletion is blocked. The same script reads
ConnectorAccount and ClusterConnectorAccount (tests/gitops/accounts.py): Healthy when verified,
Progressing while new, waiting for its Secret, its circuit open or in a credentials rotation's
grace period, Degraded when the platform refuses its credentials, Progressing while an account in
use is being deleted. Also: odd or partial objects never make the script fail, and the README's
argocd-cm snippet installs this very script under all three kinds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from connector_operator.domain.outcome import Outcome
from tests.gitops import accounts, objects

ARGOCD_DIR = Path(__file__).resolve().parents[2] / "charts" / "open-connectors-operator" / "argocd"
HEALTH_LUA = ARGOCD_DIR / "health.lua"
README = ARGOCD_DIR / "README.md"
CM_KEY = "resource.customizations.health.openconnectors.io_ConnectorInstance"
CM_KEYS = [
    f"resource.customizations.health.openconnectors.io_{kind}"
    for kind in ("ConnectorInstance", *accounts.KINDS)
]
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing"}

# What Argo CD's Lua VM offers a health script (base functions and the safe libraries).
SANDBOX = """
function(script, obj)
  local chunk = assert(loadstring(script, "=health.lua"))
  local env = {
    obj = obj, ipairs = ipairs, pairs = pairs, next = next, type = type, tostring = tostring,
    tonumber = tonumber, error = error, pcall = pcall, select = select, unpack = unpack,
    string = string, table = table, math = math,
  }
  setfenv(chunk, env)
  local hs = chunk()
  local names = {}
  for name in pairs(env) do
    table.insert(names, name)
  end
  return hs, names
end
"""
PROVIDED = {
    *("obj", "ipairs", "pairs", "next", "type", "tostring", "tonumber", "error", "pcall", "select"),
    *("unpack", "string", "table", "math"),
}

Health = Callable[[objects.Object], dict[str, Any]]


def run_script(script: str, obj: objects.Object) -> dict[str, Any]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=False)
    assert lua.eval("_VERSION") == "Lua 5.1"
    hs, names = lua.eval(SANDBOX)(script, lua.table_from(obj, recursive=True))
    leaked = set(names.values()) - PROVIDED
    assert not leaked, f"health.lua set globals {sorted(leaked)}"
    assert hs is not None, "health.lua returned nothing"
    return dict(hs.items())


@pytest.fixture(scope="module")
def health() -> Health:
    script = HEALTH_LUA.read_text()
    return lambda obj: run_script(script, obj)


def said(outcome: Outcome) -> str:
    return f"{outcome.reason.value}: {outcome.message}"


AVAILABLE = "Available: The instance is available and its token is in the Secret"
AHEAD = "Waiting for the operator to handle generation 2 (last handled: 1)"

PAUSED = "Paused by the annotation openconnectors.io/paused: the operator writes nothing until it is removed"

EXPECTED: dict[str, tuple[str, Callable[[], str]]] = {
    "ready": ("Healthy", lambda: AVAILABLE),
    "ready_after_spec_change": ("Healthy", lambda: AVAILABLE),
    "ready_after_transient_failure": ("Healthy", lambda: AVAILABLE),
    "new_without_status": ("Progressing", lambda: "Waiting for status"),
    "new": ("Progressing", lambda: "Waiting for status"),
    "generation_ahead_of_observed": ("Progressing", lambda: AHEAD),
    "stalled_then_spec_changed": ("Progressing", lambda: AHEAD),
    "waiting_for_secret_new": ("Progressing", lambda: said(objects.waiting_for_secret(ready=False))),
    "waiting_for_secret_after_spec_change": (
        "Progressing",
        lambda: said(objects.waiting_for_secret(ready=True)),
    ),
    "api_unavailable_creating": ("Progressing", lambda: said(objects.api_unavailable(ready=False))),
    "api_unavailable_after_update_ready_true": (
        "Progressing",
        lambda: said(objects.api_unavailable(ready=True)),
    ),
    "rate_limited_after_update_ready_true": ("Progressing", lambda: said(objects.rate_limited(ready=True))),
    "rate_limited_on_resync_ready_true": ("Progressing", lambda: said(objects.rate_limited(ready=True))),
    "stalled_configuration_rejected": ("Degraded", lambda: said(objects.configuration_rejected())),
    "stalled_credentials_rejected_ready_true": (
        "Degraded",
        lambda: said(objects.credentials_rejected(ready=True)),
    ),
    "stalled_secret_conflict": ("Degraded", lambda: said(objects.secret_conflict())),
    "stalled_instance_invalid": ("Degraded", lambda: said(objects.instance_invalid())),
    "stalled_adoption_conflict": ("Degraded", lambda: said(objects.adoption_conflict())),
    # Argo CD's own word for a resource someone paused on purpose.
    "paused": ("Suspended", lambda: PAUSED),
    "paused_then_spec_changed": ("Suspended", lambda: PAUSED),
    "deleting": ("Progressing", lambda: "Deleting"),
    "deleting_retrying": ("Progressing", lambda: "Deleting: " + said(objects.api_unavailable(ready=False))),
    "deleting_after_stall": ("Progressing", lambda: "Deleting"),
    "deletion_blocked": ("Degraded", lambda: said(objects.deletion_blocked())),
    "deletion_credentials_rejected": ("Degraded", lambda: said(objects.deletion_credentials_rejected())),
}


def test_every_state_has_an_expectation() -> None:
    assert set(EXPECTED) == set(objects.STATES)


@pytest.mark.parametrize("name", EXPECTED)
def test_health_of_each_state(health: Health, name: str) -> None:
    status, message = EXPECTED[name]
    assert health(objects.state(name)) == {"status": status, "message": message()}


def test_transient_retries_are_never_degraded(health: Health) -> None:
    retried = [
        n for n in objects.STATES if n.startswith(("waiting_for_secret", "api_unavailable", "rate_limited"))
    ]
    assert len(retried) == 6
    for name in retried:
        obj = objects.state(name)
        reconciling = next(c for c in obj["status"]["conditions"] if c["type"] == "Reconciling")
        assert reconciling["status"] == "True", name
        assert health(obj)["status"] == "Progressing", name


def test_ready_true_is_not_healthy_while_retrying(health: Health) -> None:
    obj = objects.state("rate_limited_on_resync_ready_true")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], obj["status"]["observedGeneration"]) == ("True", obj["metadata"]["generation"])
    assert health(obj)["status"] == "Progressing"


def test_a_stall_from_before_the_deletion_does_not_degrade_it(health: Health) -> None:
    obj = objects.state("deleting_after_stall")
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert stalled["observedGeneration"] < obj["metadata"]["generation"]
    assert health(obj) == {"status": "Progressing", "message": "Deleting"}


def _with(obj: objects.Object, **status: Any) -> objects.Object:
    return {**obj, "status": status}


ODD_OBJECTS = {
    "empty status": _with(objects.created()),
    "empty conditions": _with(objects.created(), observedGeneration=1, conditions=[]),
    "conditions without reason or message": _with(
        objects.created(),
        observedGeneration=1,
        conditions=[{"type": "Ready", "status": "True"}, {"type": "Stalled", "status": "False"}],
    ),
    "unknown statuses": _with(
        objects.created(),
        observedGeneration=1,
        conditions=[{"type": t, "status": "Unknown"} for t in ("Ready", "Reconciling", "Stalled")],
    ),
    "no generation": {
        **objects.state("ready"),
        "metadata": {k: v for k, v in objects.created()["metadata"].items() if k != "generation"},
    },
    "no metadata": {"apiVersion": "openconnectors.io/v1beta1", "kind": "ConnectorInstance"},
    "deleting without status": objects.deletion_requested(objects.created()),
}


@pytest.mark.parametrize("name", ODD_OBJECTS)
def test_odd_objects_get_a_valid_health(health: Health, name: str) -> None:
    result = health(ODD_OBJECTS[name])
    assert result["status"] in STATUSES
    assert isinstance(result["message"], str)
    assert result["message"]


def test_odd_objects_are_healthy_only_when_ready_says_so(health: Health) -> None:
    assert health(ODD_OBJECTS["empty status"])["status"] == "Progressing"
    assert health(ODD_OBJECTS["unknown statuses"])["status"] == "Progressing"
    assert health(ODD_OBJECTS["no metadata"])["status"] == "Progressing"
    assert health(ODD_OBJECTS["conditions without reason or message"]) == {
        "status": "Healthy",
        "message": "Ready",
    }


def test_the_readme_installs_this_script_into_argocd_cm() -> None:
    readme = README.read_text()
    script = HEALTH_LUA.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)
    snippet = next(b for b in blocks if "name: argocd-cm" in b and CM_KEY in b)
    placeholder = next(
        line for line in snippet.splitlines() if "health.lua" in line and line.lstrip().startswith("#")
    )
    indent = placeholder[: len(placeholder) - len(placeholder.lstrip())]
    pasted = snippet.replace(
        placeholder, "\n".join(indent + line if line else line for line in script.splitlines())
    )
    configmap = yaml.safe_load(pasted)
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["name"] == "argocd-cm"
    assert sorted(configmap["data"]) == sorted(CM_KEYS)
    for key in CM_KEYS:
        assert configmap["data"][key].rstrip("\n") == script.rstrip("\n"), key
    installed = configmap["data"][CM_KEY]
    assert run_script(installed, objects.state("ready"))["status"] == "Healthy"
    assert run_script(configmap["data"][CM_KEYS[2]], accounts.state(accounts.KINDS[1], "verified"))[
        "status"
    ] == ("Healthy")


def test_the_readme_s_commands_install_the_script_under_every_kind() -> None:
    readme = README.read_text()
    for key in CM_KEYS:
        assert readme.count(f'"{key}": $script') == 1, key  # jq
        assert readme.count(key.replace(".", "\\.") + "=health.lua") == 1, key  # helm --set-file


def test_the_readme_does_not_carry_a_second_copy_of_the_script() -> None:
    readme = README.read_text()
    for line in HEALTH_LUA.read_text().splitlines():
        if line.startswith("local function "):
            assert line not in readme


# --- accounts -------------------------------------------------------------------------------------


def verified_message(obj: objects.Object) -> str:
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    return f"Available: {ready['message']}"


ACCOUNT_EXPECTED: dict[str, tuple[str, Callable[[objects.Object], str]]] = {
    "new": ("Progressing", lambda _: "Waiting for status"),
    "verified": ("Healthy", verified_message),
    "waiting_for_secret": ("Progressing", lambda _: said(accounts.waiting_for_secret())),
    "circuit_open_new": ("Progressing", lambda _: said(accounts.circuit_open())),
    # The credentials were verified, the platform fails now: not the account's fault, retried.
    "circuit_open_after_verified": ("Progressing", lambda _: said(accounts.circuit_open())),
    "rotation_grace": ("Progressing", lambda _: said(accounts.rotation_grace())),
    "credentials_rejected": ("Degraded", lambda _: said(accounts.credentials_rejected())),
    # In use: its finalizer waits for its instances.
    "deleting_in_use": ("Progressing", lambda _: "Deleting"),
}


def test_every_account_state_has_an_expectation() -> None:
    assert set(ACCOUNT_EXPECTED) == set(accounts.STATES)


@pytest.mark.parametrize("kind", accounts.KINDS)
@pytest.mark.parametrize("name", ACCOUNT_EXPECTED)
def test_health_of_each_account_state(health: Health, kind: str, name: str) -> None:
    obj = accounts.state(kind, name)
    status, message = ACCOUNT_EXPECTED[name]
    assert health(obj) == {"status": status, "message": message(obj)}


def test_an_open_circuit_is_ready_false_but_never_degraded(health: Health) -> None:
    obj = accounts.state(accounts.KINDS[1], "circuit_open_after_verified")
    by_type = {c["type"]: c for c in obj["status"]["conditions"]}
    assert (by_type["Ready"]["status"], by_type["Ready"]["reason"]) == ("False", "CircuitOpen")
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert health(obj)["status"] == "Progressing"
