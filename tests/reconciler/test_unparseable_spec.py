"""An object whose spec the operator cannot parse is still deleted (issue 9 review, finding 4).
Moved here from tests/integration: kopf's delete handler runs in-process, attempt by attempt.

Such an object was admitted by an earlier CRD (or by an API server reading a pattern differently
than the operator: the tag "crm\\u00a0" did, until the patterns were spelled out). The delete
handler parsed the spec and raised the ValidationError, which kopf retried every few seconds
forever: the object, even with `deletionPolicy: Orphan`, was never deleted, and a namespace
deletion would hang on it. Here the CRD is loosened for the moment of one create (no tag pattern,
as an earlier version might have had) and restored, then the operator sees the object for the
first time (as after an upgrade), and the object is deleted: with `Orphan` it goes at the delete
handler's first attempt; with `Delete` it says `Stalled`/`InvalidSpec` with the release command,
and the release (a spec change, accepted thanks to the API server's validation ratcheting) ends
kopf's delay and lets it go at the next attempt. A ValidationError would be raised out of the
handler (kopf's retry forever) and fail the test; none is logged either.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api.names import FINALIZER, GROUP, PLURAL
from tests.fixtures.waiting import eventually
from tests.integration.support import closeio_spec, ready_inputs
from tests.reconciler.kopfstandin import Operator

CRD_NAME = f"{PLURAL}.{GROUP}"
UNPARSEABLE_TAG = "crm "  # a trailing space: refused by the model and by today's CRD
RELEASE = """--type merge -p '{"spec":{"deletionPolicy":"Orphan"}}'"""


def tag_items(crd: dict[str, Any]) -> list[dict[str, Any]]:
    """The tags' item schema of every served version (they share one schema)."""
    return [
        version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["tags"]["items"]
        for version in crd["spec"]["versions"]
    ]


@contextlib.contextmanager
def crd_without_the_tag_pattern(api_client: client.ApiClient) -> Iterator[None]:
    """The session's ConnectorInstance CRD without its tag pattern, restored on exit."""
    ext = client.ApiextensionsV1Api(api_client)

    def read() -> dict[str, Any]:
        crd: dict[str, Any] = api_client.sanitize_for_serialization(
            ext.read_custom_resource_definition(CRD_NAME)
        )
        return crd

    loose = read()
    pattern, *_ = [items.pop("pattern") for items in tag_items(loose)]  # from every version
    ext.replace_custom_resource_definition(CRD_NAME, loose)
    try:
        yield
    finally:
        strict = read()
        for items in tag_items(strict):
            items["pattern"] = pattern
        ext.replace_custom_resource_definition(CRD_NAME, strict)


async def admitted(op: Operator, name: str, spec: dict[str, Any]) -> None:
    """Create the object once the API server serves the loosened CRD (it applies a CRD update
    asynchronously)."""

    def created() -> bool:
        try:
            op.instances.create(name, spec)
        except ApiException as error:
            if error.status == 422:
                return False
            raise
        return True

    await eventually(created, 30, "the API server to admit the unparseable spec")


async def strict_again(op: Operator) -> None:
    def refused() -> bool:
        try:
            op.instances.custom.create_namespaced_custom_object(
                GROUP,
                "v1beta1",
                op.namespace,
                PLURAL,
                {
                    "apiVersion": f"{GROUP}/v1beta1",
                    "kind": "ConnectorInstance",
                    "metadata": {"name": "probe"},
                    "spec": closeio_spec(tags=[UNPARSEABLE_TAG]),
                },
                dry_run="All",
            )
        except ApiException as error:
            return bool(error.status == 422)
        return False

    await eventually(refused, 30, "the API server to serve the restored CRD")


@pytest.fixture
def unparseable(operator: Operator, api_client: client.ApiClient) -> Callable[..., Awaitable[None]]:
    """Create an object whose tag the operator's model refuses, as an earlier CRD admitted it; the
    operator's first pass over it (with kopf's finalizer) says `Stalled`/`InvalidSpec`."""
    op = operator

    async def create(name: str, **spec: Any) -> None:
        with crd_without_the_tag_pattern(api_client):
            await admitted(op, name, closeio_spec(tags=[UNPARSEABLE_TAG], **spec))
        await strict_again(op)
        # The API server serves the object again once it has rebuilt the CRD's storage.
        await eventually(lambda: op.instances.get(name) is not None, 30, "the object served again")
        await op.condition(name, "Stalled", "True", reason="InvalidSpec", passes=1)
        assert FINALIZER in ((op.instances.get(name) or {})["metadata"].get("finalizers") or [])

    return create


async def test_an_unparseable_spec_with_orphan_is_deleted_within_seconds(
    operator: Operator, unparseable: Callable[..., Awaitable[None]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="connector_operator")  # the operator's own log
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    await unparseable("crm", deletionPolicy="Orphan")

    assert await op.delete("crm") is None  # the first attempt releases it
    assert op.instances.get("crm") is None
    assert op.events.reasons()[-1] == "Orphaned"
    assert "ValidationError" not in caplog.text


async def test_an_unparseable_spec_with_delete_says_how_to_release_it(
    operator: Operator, unparseable: Callable[..., Awaitable[None]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="connector_operator")  # the operator's own log
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    await unparseable("crm")

    blocked = await op.delete("crm")
    assert blocked is not None
    condition = op.instances.condition("crm", "Stalled")
    assert condition.get("reason") == "InvalidSpec"
    assert RELEASE in condition.get("message", "")
    assert "Cannot delete the remote instance: the spec does not parse (tags.0:" in condition["message"]
    # kopf records its handler's progress: the TemporaryError's message.
    progress = op.delete_progress("crm")
    assert RELEASE in progress["message"]  # kopf waits out our delay; no ValidationError raised
    assert op.delete_waits("crm")

    op.instances.patch_spec("crm", {"deletionPolicy": "Orphan"})  # tags unchanged: ratcheting
    await op.event("crm")
    assert not op.delete_waits("crm")  # the spec change ends kopf's delay: it runs again at once
    assert await op.retry_delete("crm") is None  # and releases the object
    assert op.instances.get("crm") is None
    assert "ValidationError" not in caplog.text
