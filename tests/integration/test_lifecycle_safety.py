"""Lifecycle safety (issue 9, findings 12, 13 and the watch label of 14), on the real API server.

- Input Secrets carry the in-use finalizer `openconnectors.io/in-use` while an object references
  them, so the namespace-deletion order (Secrets first) no longer strands an object; both marks
  (finalizer and watch label) go when no object references the Secret any more.
- An object whose credentials Secret never existed is deleted at once, without a platform call.
- A spec change (`deletionPolicy: Orphan`) re-runs a blocked delete at once, not after kopf's delay.
- The digests in status are keyed with the operator's own Secret, not the public UID, and an
  upgrade from UID-keyed digests re-keys them without a PUT.

The test control plane has no namespace controller: a namespace deletion is played by deleting
the Secrets first, then the object, which is the order that used to strand it. The digests "made
the old way" are computed here as commit e3b88ed computed them, from `desired_instance` (which both
versions have), so that these tests also run against the old operator and fail there.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
from typing import Any

import kopf
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api.names import GROUP, PLURAL, VERSION
from connector_operator.api.spec import parse_spec
from connector_operator.domain.desired import desired_instance
from hack.controlplane.cluster import ControlPlane
from tests.fixtures.operator import wait_until
from tests.integration.support import (
    ACCOUNT,
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    Env,
    closeio_spec,
    put_secret,
    remotes_for,
    secret_data,
)

IN_USE = "openconnectors.io/in-use"
WATCH_LABEL = "openconnectors.io/watch"
OTHER_SECRET = "other-api"
DIGEST_KEY_SECRET = "open-connectors-operator-digest-key"


def marks(env: Env, name: str) -> tuple[bool, bool] | None:
    """(has the in-use finalizer, has the watch label) of a Secret; None when it is gone."""
    try:
        meta = env.core.read_namespaced_secret(name, env.namespace).metadata
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return IN_USE in (meta.finalizers or []), WATCH_LABEL in (meta.labels or {})


def deleting(env: Env, name: str) -> bool:
    return env.core.read_namespaced_secret(name, env.namespace).metadata.deletion_timestamp is not None


# --- finding 12: the in-use finalizer ----------------------------------------------------------


def test_secrets_deleted_before_the_object_still_delete_the_remote_instance(env: Env) -> None:
    uid = env.create_ready()["metadata"]["uid"]

    # A namespace deletion: the Secrets go first, then the ConnectorInstance.
    env.core.delete_namespaced_secret(ACCOUNT, env.namespace)
    env.core.delete_namespaced_secret(CLOSEIO_SECRET, env.namespace)
    assert marks(env, ACCOUNT) == (True, True)  # held, still readable
    assert deleting(env, ACCOUNT)
    assert marks(env, CLOSEIO_SECRET) == (True, True)
    # The token Secret is the operator's own (deleted by it, owned by the object): never held.
    assert marks(env, "crm-token") == (False, True)
    env.simulator.control.reset_counters()
    env.instances.delete("crm")

    env.instances.wait_gone("crm", timeout=30)
    assert remotes_for(env.simulator, uid) == []
    assert env.simulator.control.counters().get("DELETE /instances/{id}") == 1
    for name in (ACCOUNT, CLOSEIO_SECRET, "crm-token"):
        wait_until(lambda name=name: marks(env, name) is None, 15, f"Secret {name} to go")


def test_a_credentials_secret_that_never_existed_does_not_block_the_delete(env: Env) -> None:
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    env.instances.create("typo", closeio_spec(credentialsSecretRef={"name": "oc-acount"}))
    env.instances.wait_condition("typo", "Reconciling", "True", reason="WaitingForSecret")
    env.simulator.control.reset_counters()

    env.instances.delete("typo")
    env.instances.wait_gone("typo", timeout=10)
    assert env.simulator.control.counters() == {}  # not a single platform call

    def released_event() -> list[Any]:
        events = env.core.list_namespaced_event(env.namespace).items
        return [
            e for e in events if e.involved_object.name == "typo" and e.reason == "DeletedWithoutPlatformCall"
        ]

    [event] = wait_until(released_event, 10, "the event saying why no platform call was made")
    assert "'oc-acount' does not exist" in event.message
    # Its configuration Secret was held while the object waited, and is released with it.
    wait_until(lambda: marks(env, CLOSEIO_SECRET) == (False, False), 10, "the configuration Secret released")


def pending_retry(env: Env, name: str) -> float:
    """Seconds until kopf retries the object's delete handler (its `delayed`), 0 when none."""
    status = (env.instances.get(name) or {}).get("status") or {}
    record = ((status.get("kopf") or {}).get("progress") or {}).get("delete_instance") or {}
    if not record.get("delayed"):
        return 0.0
    delayed = datetime.datetime.fromisoformat(record["delayed"]).replace(tzinfo=datetime.UTC)
    return (delayed - datetime.datetime.now(datetime.UTC)).total_seconds()


def test_orphan_releases_a_blocked_delete_within_seconds(env: Env) -> None:
    uid = env.create_ready()["metadata"]["uid"]
    put_secret(env.core, env.namespace, ACCOUNT, {"userSecret": "wrong", "organizationSecret": "wrong"})
    env.instances.delete("crm")
    env.instances.wait_condition("crm", "Stalled", "True", reason="CredentialsRejected")
    # Blocked, and kopf's next retry is far off (the backoff grows with each failed attempt).
    wait_until(lambda: pending_retry(env, "crm") >= 10, 120, "a retry at least 10 s away")

    env.instances.patch_spec("crm", {"deletionPolicy": "Orphan"})
    env.instances.wait_gone("crm", timeout=5)
    assert len(remotes_for(env.simulator, uid)) == 1  # orphaned, as the user chose


# --- finding 14: the watch label (and the finalizer) go with the last reference -----------------


def test_a_dropped_reference_releases_the_secret_and_a_shared_one_stays_held(env: Env) -> None:
    env.ready_inputs()
    put_secret(env.core, env.namespace, OTHER_SECRET, {"apiKey": "other-key"})
    other_configuration = [
        {"key": "username", "valueFrom": {"secretKeyRef": {"name": OTHER_SECRET, "key": "apiKey"}}}
    ]
    env.instances.create("crm", closeio_spec())
    env.instances.create("second", closeio_spec(configuration=other_configuration))
    env.instances.wait_ready("crm")
    env.instances.wait_ready("second")
    for name in (ACCOUNT, CLOSEIO_SECRET, OTHER_SECRET):
        assert marks(env, name) == (True, True), name
    shared_version = env.core.read_namespaced_secret(ACCOUNT, env.namespace).metadata.resource_version

    # crm stops reading CLOSEIO_SECRET and reads the Secret `second` reads.
    env.instances.patch_spec("crm", {"configuration": other_configuration})
    wait_until(lambda: marks(env, CLOSEIO_SECRET) == (False, False), 15, "the dropped Secret released")
    wait_until(
        lambda: (env.instances.get("crm") or {})["status"].get("observedGeneration") == 2, what="the update"
    )
    assert marks(env, ACCOUNT) == (True, True)
    assert marks(env, OTHER_SECRET) == (True, True)
    # A shared Secret is patched once when first used, never again per pass or per object.
    assert env.core.read_namespaced_secret(ACCOUNT, env.namespace).metadata.resource_version == shared_version

    env.instances.delete("crm")
    env.instances.wait_gone("crm")
    assert marks(env, ACCOUNT) == (True, True)  # `second` still reads both
    assert marks(env, OTHER_SECRET) == (True, True)

    env.instances.delete("second")
    env.instances.wait_gone("second")
    for name in (ACCOUNT, OTHER_SECRET):
        wait_until(lambda name=name: marks(env, name) == (False, False), 15, f"Secret {name} released")
    assert secret_data(env.core, env.namespace, ACCOUNT)  # released, not deleted


async def test_a_release_racing_a_new_reader_leaves_the_secret_held(
    control_plane: ControlPlane, core: client.CoreV1Api, namespace: str
) -> None:
    """The race the per-Secret lock closes: a release decided (no object in kopf's index) while a
    new object starts reading the Secret, with the watch cache still showing it held."""
    from connector_operator.engine.secretholds import SecretHolds
    from connector_operator.engine.secretreads import SecretReads
    from connector_operator.engine.wakeups import Wakeups
    from connector_operator.kube.api import KubeAPI
    from connector_operator.kube.secrets import Secrets

    put_secret(core, namespace, ACCOUNT, {"userSecret": "u", "organizationSecret": "o"})
    key = (namespace, ACCOUNT)
    info = kopf.ConnectionInfo(
        server=control_plane.server, ca_path=str(control_plane.ca_file), token=control_plane.admin_token
    )
    api = KubeAPI(lambda: info)
    try:
        reads = SecretReads()
        holds = SecretHolds(Secrets(api), reads.copies)
        held = await reads.read(holds.secrets, Wakeups(), holds, {}, namespace, ACCOUNT)
        assert held is not None
        assert held.held
        stale_cache = {key: held}  # what the watch showed before the release

        no_users: dict[tuple[str, str], list[str]] = {}
        release = asyncio.ensure_future(holds.release_if_unused(key, no_users, held))
        await asyncio.sleep(0)  # let the release take the lock and announce itself
        reader = reads.read(holds.secrets, Wakeups(), holds, stale_cache, namespace, ACCOUNT)
        released, view = await asyncio.gather(release, reader)
        assert released
        assert view is not None
        assert view.held
        assert IN_USE in (core.read_namespaced_secret(ACCOUNT, namespace).metadata.finalizers or [])

        # With a user in the index, nothing is released.
        users = {key: ["crm"]}
        assert not await holds.release_if_unused(key, users, view)
        assert IN_USE in (core.read_namespaced_secret(ACCOUNT, namespace).metadata.finalizers or [])
    finally:
        await api.aclose()


# --- finding 13: digests keyed with the operator's own Secret ----------------------------------


def uid_keyed_digests(env: Env, obj: dict[str, Any]) -> tuple[str, str]:
    """(appliedDigest, tokenDigest) as commit e3b88ed made them: HMACs keyed with the object's UID."""
    uid = obj["metadata"]["uid"]
    desired = desired_instance(
        parse_spec(obj["spec"]),
        namespace=env.namespace,
        name=obj["metadata"]["name"],
        uid=uid,
        configuration={"username": CLOSEIO_API_KEY, "pagination.max": "50"},
    )
    canonical = json.dumps([env.simulator.api_url, desired.body()], sort_keys=True, separators=(",", ":"))
    applied = "hmac-sha256:" + hmac.new(uid.encode(), canonical.encode(), hashlib.sha256).hexdigest()[:32]
    token = (secret_data(env.core, env.namespace, "crm-token") or {})["token"]
    token_digest = hmac.new(uid.encode(), f"token\x00{token}".encode(), hashlib.sha256).hexdigest()[:32]
    return applied, token_digest


def test_status_digests_cannot_be_recomputed_from_the_uid(env: Env) -> None:
    obj = env.create_ready()
    applied, token = uid_keyed_digests(env, obj)
    assert obj["status"]["appliedDigest"] != applied
    assert obj["status"]["tokenDigest"] != token
    assert obj["status"]["appliedDigest"].startswith("v2:hmac-sha256:")
    # The key: random, in an Opaque Secret of the operator's namespace (here the test's), labelled.
    key_secret = env.core.read_namespaced_secret(DIGEST_KEY_SECRET, env.namespace)
    assert key_secret.type == "Opaque"
    assert key_secret.metadata.labels["app.kubernetes.io/managed-by"] == "open-connectors-operator"
    assert len(base64.b64decode(key_secret.data["key"])) == 32


@pytest.mark.manual_operator
def test_an_upgrade_from_uid_keyed_digests_makes_no_platform_write(env: Env) -> None:
    operator = env.start_operator()
    obj = env.create_ready()
    operator.stop()
    applied, token = uid_keyed_digests(env, obj)
    last_sync = obj["status"]["lastSyncTime"]
    # The status as the operator before issue 9 left it.
    client.CustomObjectsApi(env.core.api_client).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        env.namespace,
        PLURAL,
        "crm",
        {"status": {"appliedDigest": applied, "tokenDigest": token}},
    )
    env.simulator.control.reset_counters()

    env.start_operator()

    def rekeyed() -> dict[str, Any] | None:
        status = (env.instances.get("crm") or {}).get("status") or {}
        fresh = status.get("appliedDigest") not in (None, applied) and status.get("tokenDigest") not in (
            None,
            token,
        )
        return status if fresh else None

    status = wait_until(rekeyed, 30, "the UID-keyed digests replaced")
    assert status["appliedDigest"].startswith("v2:hmac-sha256:")
    assert status["lastSyncTime"] == last_sync  # nothing was synced: only re-keyed
    counters = env.simulator.control.counters()
    assert counters.get("PUT /instances/{id}", 0) == 0
    assert counters.get("POST /instances", 0) == 0


async def test_two_starts_racing_for_the_digest_key_agree_and_a_broken_key_is_refused(
    control_plane: ControlPlane, core: client.CoreV1Api, namespace: str
) -> None:
    from connector_operator.kube import digestkey
    from connector_operator.kube.api import KubeAPI

    info = kopf.ConnectionInfo(
        server=control_plane.server, ca_path=str(control_plane.ca_file), token=control_plane.admin_token
    )
    apis = [KubeAPI(lambda: info) for _ in range(4)]
    try:
        keys = await asyncio.gather(*(digestkey.load_or_create(api, namespace, "race") for api in apis))
        assert len(set(keys)) == 1
        assert len(keys[0]) == 32
        stored = core.read_namespaced_secret("race", namespace)
        assert base64.b64decode(stored.data["key"]) == keys[0]

        put_secret(core, namespace, "short", {"key": "too-short"})
        with pytest.raises(digestkey.DigestKeyError) as refused:
            await digestkey.load_or_create(apis[0], namespace, "short")
        assert "too-short" not in str(refused.value)
        assert secret_data(core, namespace, "short") == {"key": "too-short"}  # never replaced
    finally:
        for api in apis:
            await api.aclose()
