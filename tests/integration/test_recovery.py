"""Recovery is prompt (issue 10): a deletion waiting in backoff retries within seconds of the
platform answering again, instead of waiting out a delay grown by 429s or computed by an operator
process that is gone.

Times are taken from the simulator's request log (when the platform saw each call), not from the
operator. Each test would fail without the mechanism it covers: the delays in play are minutes.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

from tests.fixtures.operator import wait_until
from tests.integration.support import Env, closeio_spec, remotes_for
from tests.integration.test_lifecycle_safety import pending_retry

DELETE_ROUTE = "/instances/{id}"
PROGRESS = ("status", "kopf", "progress", "delete_instance")


def deletes(env: Env) -> list[dict[str, Any]]:
    return [
        r for r in env.simulator.control.requests() if r["method"] == "DELETE" and r["route"] == DELETE_ROUTE
    ]


def served(env: Env, status: int) -> list[float]:
    """Arrival times of the DELETEs answered with `status`."""
    return [r["at"] for r in deletes(env) if r["status"] == status]


def delay_deletion(env: Env, name: str, seconds: float) -> None:
    """Move kopf's next retry of the object's delete handler `seconds` away, as a long backoff (or
    a previous operator process) would have left it: the record is the one kopf wrote, only its
    `delayed` changes, in kopf's own format."""
    obj = env.instances.get(name)
    assert obj is not None
    record: Any = obj
    for part in PROGRESS:
        record = record[part]
    written = datetime.datetime.fromisoformat(record["delayed"])
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    if written.tzinfo is None:
        later = later.replace(tzinfo=None)
    patch = {
        "status": {
            "kopf": {"progress": {"delete_instance": {"delayed": later.isoformat(timespec="microseconds")}}}
        }
    }
    env.instances.custom.patch_namespaced_custom_object_status(
        "openconnectors.io", "v1beta1", env.namespace, "connectorinstances", name, patch
    )
    assert pending_retry(env, name) > seconds - 30


@pytest.mark.slow
def test_a_deletion_after_waited_out_429s_and_a_503_ends_within_seconds_of_recovery(env: Env) -> None:
    """The reproduction of issue 10: 189 s before, because kopf's retry count (which counts the
    429s) made the 503's delay 150-300 s."""
    uid = env.create_ready()["metadata"]["uid"]
    env.simulator.control.rate_limit_next("DELETE", 8, retry_after=1)
    env.simulator.control.fail_next("DELETE", 1, status=503)
    env.simulator.control.reset_counters()

    env.instances.delete("crm")
    env.instances.wait_gone("crm", timeout=60)
    gone = time.time()
    assert [r["status"] for r in deletes(env)] == [429] * 8 + [503, 200]
    [recovered] = served(env, 503)  # the platform answers again from the next call on
    [deleted] = served(env, 200)
    assert deleted - recovered < 10
    assert gone - recovered < 10
    assert remotes_for(env.simulator, uid) == []


@pytest.mark.manual_operator
def test_a_restarted_operator_does_not_honour_a_long_delay_left_by_the_previous_one(env: Env) -> None:
    env.ready_inputs()
    operator = env.start_operator()
    uid = env.instances.create("crm", closeio_spec())["metadata"]["uid"]
    env.instances.wait_ready("crm")
    env.simulator.control.fail_next("DELETE", 1000, status=503)  # down until the restart
    env.instances.delete("crm")
    wait_until(lambda: served(env, 503) and pending_retry(env, "crm") > 0, what="the deletion waiting")
    operator.kill()
    delay_deletion(env, "crm", 300)  # what a long outage would have grown it to

    env.simulator.control.clear_faults()
    started = time.time()  # from the launch: the new process may finish before it reports healthy
    env.start_operator()
    env.instances.wait_gone("crm", timeout=20)
    assert time.time() - started < 10
    [deleted] = served(env, 200)
    assert deleted - started < 10
    assert remotes_for(env.simulator, uid) == []


def test_a_success_on_the_same_platform_and_credentials_runs_a_waiting_deletion_now(env: Env) -> None:
    """An instance without an account: any call the platform answers with success, for the same
    host and account secrets, ends the wait of deletions that failed there."""
    uid = env.create_ready()["metadata"]["uid"]
    env.simulator.control.fail_next("DELETE", 3, status=503)
    env.instances.delete("crm")
    # Three failures: the next retry is 4-8 s away, time enough to lengthen it before it comes.
    wait_until(lambda: len(served(env, 503)) == 3, what="three failed DELETEs")
    delay_deletion(env, "crm", 300)
    assert env.instances.get("crm") is not None
    assert served(env, 200) == []

    env.instances.create("second", closeio_spec())  # same platform, same account Secret
    env.instances.wait_ready("second")
    created = max(r["at"] for r in env.simulator.control.requests() if r["method"] == "POST")
    env.instances.wait_gone("crm", timeout=20)
    [deleted] = served(env, 200)
    assert deleted - created < 10
    assert remotes_for(env.simulator, uid) == []
