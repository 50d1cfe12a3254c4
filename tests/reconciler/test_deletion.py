"""Deletion honours deletionPolicy, survives unusable account secrets, and tells how to get out
(moved here from tests/integration: kopf's delete handler run by the test, attempt by attempt,
against the API server and the simulator).

There is no garbage collector in the test control plane, so the token Secret's removal is the
operator's own doing here, and is asserted as such. A deletion that fails returns the
TemporaryError kopf would retry on; the test runs the handler again (`retry_delete`) where kopf
would after its delay.
"""

from __future__ import annotations

import httpx
import pytest

from connector_operator.api.names import GROUP, PLURAL, VERSION
from connector_operator.kube.api import KubeError
from tests.integration.support import ACCOUNT, closeio_spec, put_secret, remotes_for, secret_data
from tests.reconciler.kopfstandin import Operator


async def test_delete_policy_deletes_the_remote_instance_and_the_token_secret(operator: Operator) -> None:
    op = operator
    uid = (await op.create_ready())["metadata"]["uid"]
    op.simulator.control.reset_counters()

    assert await op.delete("crm") is None  # done at the first attempt
    assert op.instances.get("crm") is None
    assert remotes_for(op.simulator, uid) == []
    assert secret_data(op.core, op.namespace, "crm-token") is None
    assert op.simulator.control.counters().get("DELETE /instances/{id}") == 1
    assert op.events.reasons()[-1] == "Deleted"


async def test_orphan_policy_leaves_the_remote_instance_and_hands_it_over(operator: Operator) -> None:
    # Issue 18: Orphan removes the object's identity tags (one PATCH), so another object may adopt
    # the instance; the user's own tags stay. tests/integration/test_ownership.py adopts it.
    op = operator
    created = await op.create_ready(deletionPolicy="Orphan")
    uid, instance_id = created["metadata"]["uid"], created["status"]["instanceID"]
    op.simulator.control.reset_counters()

    assert await op.delete("crm") is None
    assert op.instances.get("crm") is None
    assert remotes_for(op.simulator, uid) == []
    left = next(i for i in op.simulator.control.instances() if i["id"] == instance_id)
    assert left["tags"] == ["crm"]
    assert op.simulator.control.counters() == {"PATCH /instances/{id}": 1}
    assert op.events.reasons()[-1] == "Released"


async def test_deletion_without_credentials_is_stalled_with_the_release_command(operator: Operator) -> None:
    op = operator
    uid = (await op.create_ready())["metadata"]["uid"]
    # The Secret itself cannot go while the object uses it (the in-use finalizer, see
    # test_lifecycle_safety.py), but its keys can.
    put_secret(op.core, op.namespace, ACCOUNT, {"unrelated": "value"})

    blocked = await op.delete("crm")
    assert blocked is not None  # kopf retries
    condition = op.instances.condition("crm", "Stalled")
    assert (condition["status"], condition["reason"]) == ("True", "DeletionBlocked")
    command = (
        f"kubectl patch connectorinstances crm -n {op.namespace} --type merge "
        """-p '{"spec":{"deletionPolicy":"Orphan"}}'"""
    )
    assert command in condition["message"]
    assert f"Secret '{ACCOUNT}' has no key 'userSecret'" in condition["message"]

    assert op.delete_waits("crm")  # kopf waits out the handler's delay

    op.instances.patch_spec("crm", {"deletionPolicy": "Orphan"})
    await op.event("crm")
    # The spec change ends kopf's delay: the handler runs again at once (how soon kopf reacts to
    # that: tests/integration/test_lifecycle_safety.py, test_orphan_releases_a_blocked_delete_...).
    assert not op.delete_waits("crm")
    assert await op.retry_delete("crm") is None
    assert op.instances.get("crm") is None
    assert len(remotes_for(op.simulator, uid)) == 1  # orphaned, as the user chose


async def test_a_remote_instance_already_gone_counts_as_deleted(operator: Operator) -> None:
    op = operator
    instance_id = (await op.create_ready())["status"]["instanceID"]
    async with httpx.AsyncClient() as platform:  # someone else deletes it on the platform
        gone = await platform.delete(
            f"{op.simulator.api_url}/instances/{instance_id}", headers=op.simulator.headers
        )
    gone.raise_for_status()

    assert await op.delete("crm") is None
    assert op.instances.get("crm") is None


async def test_outage_and_rate_limit_during_delete_recover_without_leftovers(operator: Operator) -> None:
    op = operator
    uid = (await op.create_ready())["metadata"]["uid"]
    op.simulator.control.fail_next("DELETE", 2, status=503)
    op.simulator.control.rate_limit_next("DELETE", 1, retry_after=1)

    failed = [await op.delete("crm")]
    while failed[-1] is not None and len(failed) < 6:
        failed.append(await op.retry_delete("crm"))
    assert failed[-1] is None
    assert len(failed) == 4  # 503, 503, 429: three retries, then done
    assert op.instances.get("crm") is None
    assert remotes_for(op.simulator, uid) == []
    assert op.simulator.control.counters()["DELETE /instances/{id}"] == 4
    assert secret_data(op.core, op.namespace, "crm-token") is None  # the token Secret removed


async def test_an_object_made_again_under_its_name_gets_an_instance_and_passes_of_its_own(
    operator: Operator,
) -> None:
    """kopf handles each uid on a worker of its own, so the old object's last events and the new
    one's first may be handled in either order; the new object must keep its own record. The
    harness hands them out in order; the old object's DELETED is handed out again after the new
    one's first event, the other order."""
    op = operator
    old = await op.create_ready()
    assert await op.delete("crm") is None
    assert op.instances.get("crm") is None
    end = op.deleted["crm"]  # the old object's last body, which its DELETED event carries
    op.instances.create("crm", closeio_spec())
    await op.event("crm")
    await op.late_deleted(end)
    new = await op.ready("crm", passes=1)
    old_uid, new_uid = old["metadata"]["uid"], new["metadata"]["uid"]
    assert new_uid != old_uid
    assert remotes_for(op.simulator, old_uid) == []
    assert [i["id"] for i in remotes_for(op.simulator, new_uid)] == [new["status"]["instanceID"]]
    await op.late_deleted(end)  # and once it is Ready
    kept = op.runtime.tracked.get(op.key("crm"))
    assert kept is not None
    assert kept.uid == new_uid
    assert op.key("crm") in op.runtime.scheduler
    # Its passes still run: a reconcile request is handled (a record lost to the old object's
    # deletion would leave it unanswered until the operator restarts).
    op.instances.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        op.namespace,
        PLURAL,
        "crm",
        {"metadata": {"annotations": {"openconnectors.io/reconcile-requested-at": "after-recreate"}}},
    )
    await op.until(
        "crm",
        lambda obj: obj.get("status", {}).get("lastHandledReconcileAt") == "after-recreate",
        passes=1,
        what="the request handled by the new object's pass",
    )


async def test_the_deleted_event_is_posted_even_when_the_token_secret_deletion_fails(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Event naming the deleted instances is the only record of them: posted before the token
    Secret is deleted, so a failure there (kopf retries the handler, which then finds nothing to
    delete on the platform) does not lose it."""
    op = operator
    instance_id = (await op.create_ready())["status"]["instanceID"]

    async def refused(*_: object) -> bool:
        raise KubeError(500, "Internal Server Error")

    monkeypatch.setattr(op.runtime.secrets, "delete_token", refused)
    with pytest.raises(KubeError):
        await op.delete("crm")
    deleted = [message for _, (_, reason, message) in op.events if reason == "Deleted"]
    assert deleted == [f"Deleted remote instance(s) {instance_id}"]
    monkeypatch.undo()
    assert await op.retry_delete("crm") is None  # kopf's retry: nothing left on the platform
    assert op.instances.get("crm") is None
    assert secret_data(op.core, op.namespace, "crm-token") is None
