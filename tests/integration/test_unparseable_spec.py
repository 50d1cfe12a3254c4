"""An object whose spec the operator cannot parse is still deleted (issue 9 review, finding 4).

Such an object was admitted by an earlier CRD (or by an API server reading a pattern differently
than the operator: the tag "crm\\u00a0" did, until the patterns were spelled out). The delete
handler parsed the spec and raised the ValidationError, which kopf retried every few seconds
forever: the object, even with `deletionPolicy: Orphan`, was never deleted, and a namespace
deletion would hang on it. Here the CRD is loosened for the moment of one create (no tag pattern,
as an earlier version might have had) and restored, then the operator starts (as after an upgrade;
a watch open across CRD updates can miss events for a while), and the object is deleted: with
`Orphan` it goes within seconds; with `Delete` it says `Stalled`/`InvalidSpec` with the release
command, and the release (a spec change, accepted thanks to the API server's validation
ratcheting) lets it go within seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api.names import FINALIZER, GROUP, PLURAL
from tests.fixtures.operator import wait_until
from tests.integration.support import Env, closeio_spec

CRD_NAME = f"{PLURAL}.{GROUP}"
UNPARSEABLE_TAG = "crm "  # a trailing space: refused by the model and by today's CRD
RELEASE = """--type merge -p '{"spec":{"deletionPolicy":"Orphan"}}'"""

pytestmark = pytest.mark.manual_operator


def tag_items(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    items: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["tags"][
        "items"
    ]
    return items


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
    pattern = tag_items(loose).pop("pattern")
    ext.replace_custom_resource_definition(CRD_NAME, loose)
    try:
        yield
    finally:
        strict = read()
        tag_items(strict)["pattern"] = pattern
        ext.replace_custom_resource_definition(CRD_NAME, strict)


def admitted(env: Env, name: str, spec: dict[str, Any]) -> None:
    """Create the object once the API server serves the loosened CRD (it applies a CRD update
    asynchronously)."""

    def created() -> bool:
        try:
            env.instances.create(name, spec)
        except ApiException as error:
            if error.status == 422:
                return False
            raise
        return True

    wait_until(created, 30, "the API server to admit the unparseable spec")


def strict_again(env: Env) -> None:
    def refused() -> bool:
        try:
            env.instances.custom.create_namespaced_custom_object(
                GROUP,
                "v1alpha1",
                env.namespace,
                PLURAL,
                {
                    "apiVersion": f"{GROUP}/v1alpha1",
                    "kind": "ConnectorInstance",
                    "metadata": {"name": "probe"},
                    "spec": closeio_spec(tags=[UNPARSEABLE_TAG]),
                },
                dry_run="All",
            )
        except ApiException as error:
            return error.status == 422
        return False

    wait_until(refused, 30, "the API server to serve the restored CRD")


@pytest.fixture
def unparseable(env: Env, api_client: client.ApiClient) -> Callable[..., None]:
    """Create an object whose tag the operator's model refuses, as an earlier CRD admitted it, and
    start the operator."""

    def create(name: str, **spec: Any) -> None:
        with crd_without_the_tag_pattern(api_client):
            admitted(env, name, closeio_spec(tags=[UNPARSEABLE_TAG], **spec))
        strict_again(env)
        env.operator = env.start_operator()
        env.instances.wait_condition(name, "Stalled", "True", reason="InvalidSpec")
        # kopf's finalizer patch can meet the API server still rebuilding the CRD's storage (a 404
        # for a moment) and kopf does not try again; the daemon puts it back after a grace period.
        wait_until(
            lambda: FINALIZER in ((env.instances.get(name) or {})["metadata"].get("finalizers") or []),
            30,
            "the finalizer",
        )

    return create


def test_an_unparseable_spec_with_orphan_is_deleted_within_seconds(
    env: Env, unparseable: Callable[..., None]
) -> None:
    env.ready_inputs()
    unparseable("crm", deletionPolicy="Orphan")

    started = time.monotonic()
    env.instances.delete("crm")
    env.instances.wait_gone("crm", timeout=10)
    print(f"deleted {time.monotonic() - started:.1f}s after the delete")
    assert env.operator is not None
    assert "ValidationError" not in env.operator.log()


def test_an_unparseable_spec_with_delete_says_how_to_release_it(
    env: Env, unparseable: Callable[..., None]
) -> None:
    env.ready_inputs()
    unparseable("crm")

    env.instances.delete("crm")
    condition = wait_until(
        lambda: (
            (c := env.instances.condition("crm", "Stalled")).get("reason") == "InvalidSpec"
            and RELEASE in c.get("message", "")
            and c
        ),
        20,
        "Stalled/InvalidSpec with the release command",
    )
    assert "Cannot delete the remote instance: the spec does not parse (tags.0:" in condition["message"]
    # kopf records its handler's progress after our condition: wait for it, no race.
    progress = wait_until(
        lambda: (
            ((env.instances.get("crm") or {}).get("status") or {})
            .get("kopf", {})
            .get("progress", {})
            .get("delete_instance")
        ),
        10,
        "kopf's progress of the delete handler",
    )
    assert RELEASE in progress["message"]  # kopf waits out our delay; no ValidationError raised

    started = time.monotonic()
    env.instances.patch_spec("crm", {"deletionPolicy": "Orphan"})  # tags unchanged: ratcheting
    env.instances.wait_gone("crm", timeout=10)
    print(f"released {time.monotonic() - started:.1f}s after the Orphan patch")
    assert env.operator is not None
    assert "ValidationError" not in env.operator.log()
