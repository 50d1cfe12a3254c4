"""Fault injection and call accounting through the control API."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.support import assert_error, closeio_body, create


def test_latency_is_added_to_api_calls_only(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    simulator.control.set_latency(300)
    started = time.perf_counter()
    assert simulator_client.get("/elements/closeio").status_code == 200
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    simulator.control.counters()
    assert time.perf_counter() - started < 0.3
    simulator.control.set_latency(0)
    started = time.perf_counter()
    simulator_client.get("/elements/closeio")
    assert time.perf_counter() - started < 0.3


def test_fail_next_is_counted_and_per_method(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    simulator.control.fail_next("POST", count=2, status=503)
    assert simulator_client.get("/elements/closeio").status_code == 200  # other methods untouched
    for _ in range(2):
        assert_error(simulator_client.post("/instances", json=closeio_body()), 503)
    assert simulator.control.instances() == []  # failed before doing anything
    create(simulator_client, closeio_body())
    assert len(simulator.control.instances()) == 1
    simulator.control.fail_next("*", count=1, status=500)
    assert_error(simulator_client.get("/instances"), 500)
    assert simulator_client.get("/instances").status_code == 200


def test_fail_next_can_target_one_route(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    instance = create(simulator_client, closeio_body())
    simulator.control.fail_next("GET", count=1, status=502, route="/instances/{id}")
    assert simulator_client.get("/instances").status_code == 200
    assert_error(simulator_client.get(f"/instances/{instance['id']}"), 502)
    assert simulator_client.get(f"/instances/{instance['id']}").status_code == 200


def test_a_rule_with_contains_hangs_only_the_calls_whose_body_contains_it(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    simulator.control.hang_next("POST", count=1, route="/instances", contains="k8s-object:team-a/")
    create(simulator_client, closeio_body("theirs", tags=["k8s-object:team-b/x"]))  # not hers: answered
    with pytest.raises(httpx.ReadTimeout):  # hers: takes effect, and no answer comes
        simulator_client.post(
            "/instances", json=closeio_body("hers", tags=["k8s-object:team-a/x"]), timeout=0.5
        )
    assert sorted(i["name"] for i in simulator.control.instances()) == ["hers", "theirs"]
    create(simulator_client, closeio_body("again", tags=["k8s-object:team-a/y"]))  # the count is spent


def test_rate_limit_next_sends_retry_after(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    simulator.control.rate_limit_next("GET", count=2, retry_after=7)
    for _ in range(2):
        response = simulator_client.get("/elements/closeio")
        assert_error(response, 429)
        assert response.headers["Retry-After"] == "7"
    assert simulator_client.get("/elements/closeio").status_code == 200


def test_drop_before_handling_has_no_side_effect(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    simulator.control.drop_next("POST", after_handling=False)
    with pytest.raises(httpx.RemoteProtocolError):
        simulator_client.post("/instances", json=closeio_body())
    assert simulator.control.instances() == []
    create(simulator_client, closeio_body())
    assert len(simulator.control.instances()) == 1


def test_drop_after_handling_keeps_the_side_effect(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    simulator.control.drop_next("POST", after_handling=True)
    with pytest.raises(httpx.RemoteProtocolError):
        simulator_client.post("/instances", json=closeio_body(name="ghost"))
    instances = simulator.control.instances()
    assert [instance["name"] for instance in instances] == ["ghost"]
    simulator.control.drop_next("DELETE", after_handling=True)
    with pytest.raises(httpx.RemoteProtocolError):
        simulator_client.delete(f"/instances/{instances[0]['id']}")
    assert simulator.control.instances() == []


def test_error_rate_per_method(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    simulator.control.set_error_rate({"POST": 1.0})
    assert_error(simulator_client.post("/instances", json=closeio_body()), 503)
    assert simulator_client.get("/elements/closeio").status_code == 200
    simulator.control.set_error_rate({"GET": 0.5}, status=502, seed=1234)
    statuses = [simulator_client.get("/elements/closeio").status_code for _ in range(200)]
    assert set(statuses) == {200, 502}
    assert 60 <= statuses.count(502) <= 140
    simulator.control.set_error_rate({})
    assert all(simulator_client.get("/elements/closeio").status_code == 200 for _ in range(20))


def test_mark_invalid_and_disabled(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    instance = create(simulator_client, closeio_body())
    assert simulator.control.mark_invalid(instance["id"])["valid"] is False
    assert simulator.control.mark_disabled(instance["id"])["disabled"] is True
    fetched = simulator_client.get(f"/instances/{instance['id']}").json()
    assert fetched["valid"] is False
    assert fetched["disabled"] is True
    simulator.control.mark_invalid(instance["id"], valid=True)
    simulator.control.mark_disabled(instance["id"], disabled=False)
    fetched = simulator_client.get(f"/instances/{instance['id']}").json()
    assert fetched["valid"] is True
    assert fetched["disabled"] is False
    with pytest.raises(httpx.HTTPStatusError):
        simulator.control.mark_invalid(1)


def test_counters_by_method_and_route_template(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    first = create(simulator_client, closeio_body())
    create(simulator_client, closeio_body())
    simulator_client.get(f"/instances/{first['id']}")
    simulator_client.get("/instances/999999999")  # 404s are calls too
    simulator_client.get("/instances", headers={"Authorization": "User nobody"})  # and 401s
    simulator_client.delete(f"/instances/{first['id']}")
    simulator.control.fail_next("PATCH")
    simulator_client.patch(f"/instances/{first['id']}", json={})  # and injected failures
    simulator_client.get("/no/such/route")  # unknown routes are not API calls
    simulator.control.instances()  # nor is the control API
    assert simulator.control.counters() == {
        "DELETE /instances/{id}": 1,
        "GET /instances": 1,
        "GET /instances/{id}": 2,
        "PATCH /instances/{id}": 1,
        "POST /instances": 2,
    }
    simulator.control.reset_counters()
    assert simulator.control.counters() == {}


def test_the_request_log_has_every_api_call_with_its_arrival_time_and_status(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    simulator.control.reset_counters()
    before = time.time()
    first = create(simulator_client, closeio_body())
    simulator.control.rate_limit_next("GET", 1, retry_after=3)
    simulator_client.get(f"/instances/{first['id']}")
    simulator.control.set_latency(200)  # arrival is when the call came, not when it was answered
    simulator_client.get(f"/instances/{first['id']}")
    simulator.control.set_latency(0)
    simulator.control.drop_next("DELETE", 1, after_handling=False)
    with pytest.raises(httpx.TransportError):
        simulator_client.delete(f"/instances/{first['id']}")
    simulator_client.get("/no/such/route")  # not an API call
    after = time.time()
    log = simulator.control.requests()
    assert [(r["method"], r["route"], r["status"]) for r in log] == [
        ("POST", "/instances", 200),
        ("GET", "/instances/{id}", 429),
        ("GET", "/instances/{id}", 200),
        ("DELETE", "/instances/{id}", None),
    ]
    base = simulator.api_url.removeprefix(simulator.base_url)
    assert [r["path"] for r in log] == [f"{base}/instances"] + [f"{base}/instances/{first['id']}"] * 3
    arrivals = [r["at"] for r in log]
    assert before <= arrivals[0] <= arrivals[1] <= arrivals[2] <= arrivals[3] <= after
    assert arrivals[3] - arrivals[2] >= 0.2  # the second GET arrived, then waited 200 ms
    simulator.control.reset_counters()
    assert simulator.control.requests() == []


def test_reset_clears_instances_faults_and_counters(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    create(simulator_client, closeio_body())
    simulator.control.fail_next("GET", count=5)
    simulator.control.set_latency(10)
    simulator.control.rotate_on_update(True)
    simulator.control.set_error_rate({"PUT": 0.5})
    faults = simulator.control.faults()
    assert faults["rules"][0]["remaining"] == 5
    assert faults["latencyMs"] == 10
    simulator.control.reset()
    assert simulator.control.instances() == []
    assert simulator.control.counters() == {}
    assert simulator.control.faults() == {
        "latencyMs": 0,
        "errorRates": {},
        "errorStatus": 503,
        "rotateTokenOnUpdate": False,
        "rules": [],
    }


def test_faults_never_hit_the_control_api(simulator: SimulatorHandle) -> None:
    simulator.control.fail_next("*", count=3)
    simulator.control.drop_next("*", count=3, after_handling=False)
    simulator.control.set_error_rate({"*": 1.0})
    assert simulator.control.health()["status"] == "ok"
    assert simulator.control.instances() == []
    simulator.control.clear_faults()
    assert simulator.control.faults()["rules"] == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/faults/rules", {"kind": "explode", "method": "GET"}),
        ("/faults/rules", {"kind": "fail", "method": "TRACE"}),
        ("/faults/rules", {"kind": "fail", "method": "GET", "count": 0}),
        ("/faults/rules", {"kind": "fail", "method": "GET", "status": 200}),
        ("/faults/rules", {"kind": "fail", "method": "GET", "route": "instances"}),
        ("/faults/rules", {"kind": "hang_after", "method": "POST", "contains": ""}),
        ("/faults/rules", {"kind": "hang_after", "method": "POST", "contains": 7}),
        ("/faults/latency", {"ms": -1}),
        ("/faults/error-rates", {"rates": {"GET": 2}}),
        ("/faults/rotate-on-update", {"enabled": "yes"}),
    ],
)
def test_control_api_rejects_bad_input(
    simulator: SimulatorHandle, path: str, body: dict[str, object]
) -> None:
    response = httpx.request(
        "PUT" if not path.endswith("rules") else "POST",
        f"{simulator.base_url}/_sim{path}",
        json=body,
        timeout=10,
    )
    assert_error(response, 400)
