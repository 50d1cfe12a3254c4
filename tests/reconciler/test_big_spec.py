"""A spec too big to keep between passes is read again by each pass (issue 20, tenant-findings N3).

The record of every object kept its spec's JSON, up to about 1 MB each. A spec past
`engine.objects.MAX_KEPT_SPEC` bytes is now known by its generation only; the pass reads the object
from the API server, and works on what it reads.
"""

from __future__ import annotations

from connector_operator.reconciler import instance
from tests.integration.support import secret_data
from tests.reconciler.kopfstandin import Operator

# Two annotations of 4 KiB for the token Secret: a valid spec of about 9 KiB.
BIG = {"name": "crm-token", "annotations": {"note-a": "a" * 4096, "note-b": "b" * 4096}}


async def test_an_object_whose_spec_is_not_kept_is_reconciled_from_what_the_pass_reads(
    operator: Operator,
) -> None:
    op = operator
    obj = await op.create_ready(tokenSecret=BIG)
    tracked = op.runtime.tracked[op.key("crm")]
    assert tracked.spec_json is None  # known by its generation only
    assert tracked.spec_bytes > 8192
    secret = op.core.read_namespaced_secret("crm-token", op.namespace)
    assert secret.metadata.annotations["note-b"] == "b" * 4096
    assert (secret_data(op.core, op.namespace, "crm-token") or {}).get("instanceID") == str(
        obj["status"]["instanceID"]
    )

    # A spec change whose event has not arrived yet: the pass works on the object as stored now.
    changed = op.instances.patch_spec("crm", {"tokenSecret": {"annotations": {"note-b": "c" * 4096}}})
    assert changed["metadata"]["generation"] == 2
    assert tracked.generation == 1
    await instance.run_pass(op.runtime, op.key("crm"))
    stored = op.instances.get("crm")
    assert stored is not None
    assert stored["status"]["observedGeneration"] == 2
    secret = op.core.read_namespaced_secret("crm-token", op.namespace)
    assert secret.metadata.annotations["note-b"] == "c" * 4096
    assert op.instances.condition("crm", "Ready")["status"] == "True"
