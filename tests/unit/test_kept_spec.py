"""What the passes keep of an object does not grow with its spec (issue 20, tenant-findings N3).

A valid spec can be about 1 MB: 200 literal values of 4 KiB, 32 annotations and 16 templates of
4 KiB, 50 tags. The record of each object kept its JSON between passes: +101 MiB per 100 objects,
so about 300 objects passed the chart's memory limit. Now a spec past `MAX_KEPT_SPEC` bytes is known
by its generation only, and the pass reads it again.
"""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from typing import Any, cast

from connector_operator.api.spec import parse_spec
from connector_operator.engine import objects
from connector_operator.engine.objects import tracked_from

SMALL: dict[str, Any] = {
    "connectorKey": "closeio",
    "credentialsSecretRef": {"name": "oc-account"},
    "configuration": [{"key": "username", "valueFrom": {"secretKeyRef": {"name": "closeio", "key": "k"}}}],
}


def maximal_spec() -> dict[str, Any]:
    """tenant-findings R-N3's spec: every list and map at the CRD's limits, valid."""
    return {
        "connectorKey": "closeio",
        "credentialsSecretRef": {"name": "oc-account"},
        "instanceName": "x" * 200,
        "tags": [f"t{i:03d}" + "y" * 96 for i in range(50)],
        "configuration": [{"key": f"k{i:03d}", "value": "v" * 4096} for i in range(200)],
        "tokenSecret": {
            "annotations": {f"a{i}": "z" * 4096 for i in range(32)},
            "template": {"data": {f"k{i}": "t" * 4096 for i in range(16)}},
        },
    }


def body(spec: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": "crm", "namespace": "team", "uid": "u-1", "generation": generation},
        "spec": spec,
        "status": {"instanceID": 7, "observedGeneration": generation},
    }


def kept_bytes(raw: dict[str, Any]) -> int:
    """The bytes still allocated for an object's record once its event is handled: what the
    process keeps of it between passes (the event's body is the watch's, and goes)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracked = tracked_from(raw, 600.0)
        tracked.observe(raw)
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tracked.generation == 1
    return kept


def test_the_spec_kept_between_passes_does_not_grow_with_its_size() -> None:
    big = maximal_spec()
    parse_spec(big)  # valid: the CRD (which the model mirrors) accepts it
    assert len(json.dumps(big)) > 1_000_000
    kept_bytes(body(SMALL))  # first use: one-time allocations (caches, interned names) not counted
    small, large = kept_bytes(body(SMALL)), kept_bytes(body(big))
    assert large <= small + 1024, (small, large)
    assert large < 16 * 1024


def test_a_small_spec_is_kept_and_a_big_one_is_read_for_the_pass() -> None:
    small = tracked_from(body(SMALL), 600.0)
    small.observe(body(SMALL))
    assert small.spec == SMALL
    assert asyncio.run(objects.spec_for_pass(small, None, ("team", "crm"))) == (1, SMALL)

    big = tracked_from(body(maximal_spec()), 600.0)
    big.observe(body(maximal_spec()))
    assert big.spec is None
    assert big.spec_bytes > objects.MAX_KEPT_SPEC
    # Without a client (a Runtime built by hand) there is nothing to read it from.
    assert asyncio.run(objects.spec_for_pass(big, None, ("team", "crm"))) is None


def test_a_spec_that_shrinks_is_kept_again_and_one_that_grows_is_dropped() -> None:
    tracked = tracked_from(body(SMALL), 600.0)
    tracked.observe(body(SMALL))
    tracked.observe(body(maximal_spec(), generation=2))
    assert (tracked.generation, tracked.spec) == (2, None)
    changed = {**SMALL, "tags": ["v3"]}
    tracked.observe(body(changed, generation=3))
    assert (tracked.generation, tracked.spec) == (3, changed)


def test_kopfs_copy_of_a_big_spec_keeps_what_the_handlers_read_and_no_long_string() -> None:
    """At start-up kopf holds every listed body until all are indexed: 300 such specs peaked at
    418 MiB after a restart. The first index handler cuts a big spec to its skeleton."""
    from connector_operator.api.spec import related_secrets
    from connector_operator.handlers.secrets import trim_instance

    spec = maximal_spec()
    username = {"key": "username", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    spec["configuration"][-1] = username  # one Secret among the 200
    raw = body(spec)
    before = parse_spec(json.loads(json.dumps(spec)))
    trim_instance(cast(Any, raw))
    after = parse_spec(raw["spec"])  # still valid: "" is a value
    assert len(json.dumps(raw["spec"])) < 16 * 1024
    assert related_secrets(after, "crm") == related_secrets(before, "crm") == {"oc-account", "s", "crm-token"}
    assert (after.connector_key, after.instance_name, after.tags) == (
        before.connector_key,
        before.instance_name,
        before.tags,
    )
    assert [e.key for e in after.configuration or []] == [e.key for e in before.configuration or []]
    # The record knows it saw a skeleton: the pass reads the object.
    tracked = tracked_from(raw, 600.0)
    tracked.observe(raw)
    assert tracked.spec is None
    assert tracked.spec_bytes > 1_000_000


def test_a_small_spec_and_a_deletions_body_are_not_cut() -> None:
    from connector_operator.engine.objects import cut_spec

    small = body({**SMALL, "tokenSecret": {"annotations": {"a": "z" * 1000}}})
    cut_spec(small)
    assert small["spec"]["tokenSecret"]["annotations"]["a"] == "z" * 1000
    deleting = body(maximal_spec())
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    cut_spec(deleting)  # kopf's delete handler reads it whole
    assert deleting["spec"] == maximal_spec()
