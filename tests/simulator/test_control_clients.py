"""The blocking and the asyncio control clients offer the same operations, with the same signatures.

Both are built from one table (`ControlOperations`); these tests keep it that way: a method added
to only one client, or a signature that differs, fails here.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest

from open_connectors_simulator.control import (
    AsyncSimulatorControl,
    ControlOperations,
    Operation,
    SimulatorControl,
)
from tests.fixtures.simulator import SimulatorHandle

# What is not a control operation: connection lifecycle and the transport itself.
TRANSPORT = {"close", "aclose", "execute", "bind", "api_url", "control_url", "base_url"}


def _public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")} - TRANSPORT


@pytest.fixture
async def clients() -> AsyncIterator[tuple[SimulatorControl, AsyncSimulatorControl]]:
    # Nothing is sent: the address only has to be well-formed.
    with SimulatorControl("http://127.0.0.1:9") as sync:
        async with AsyncSimulatorControl("http://127.0.0.1:9") as asynchronous:
            yield sync, asynchronous


def test_both_clients_expose_exactly_the_operations_of_the_table(
    clients: tuple[SimulatorControl, AsyncSimulatorControl],
) -> None:
    sync, asynchronous = clients
    table = {name for name, value in vars(ControlOperations).items() if isinstance(value, Operation)}
    assert "hang_next" in table
    assert _public(sync) == _public(asynchronous) == table


def test_same_signatures_blocking_and_awaitable(
    clients: tuple[SimulatorControl, AsyncSimulatorControl],
) -> None:
    sync, asynchronous = clients
    for name in sorted(_public(sync)):
        blocking, awaitable = getattr(sync, name), getattr(asynchronous, name)
        assert inspect.signature(blocking) == inspect.signature(awaitable), name
        assert "self" not in inspect.signature(blocking).parameters, name
        assert not inspect.iscoroutinefunction(blocking), name
        assert inspect.iscoroutinefunction(awaitable), name
        assert blocking.__name__ == awaitable.__name__ == name
        assert blocking.__doc__ == awaitable.__doc__


async def test_every_fault_rule_reaches_the_simulator_from_both(simulator: SimulatorHandle) -> None:
    route = "/instances/{id}"
    simulator.control.hang_next("GET", route=route)
    simulator.control.drop_next("PUT", after_handling=True)
    async with AsyncSimulatorControl(simulator.base_url) as control:
        await control.hang_next("DELETE", 2, route=route)
        await control.rate_limit_next("POST", retry_after=3)
        rules = [
            (r["kind"], r["method"], r["remaining"], r["route"]) for r in (await control.faults())["rules"]
        ]
    assert rules == [
        ("hang_after", "GET", 1, route),
        ("drop_after", "PUT", 1, None),
        ("hang_after", "DELETE", 2, route),
        ("rate_limit", "POST", 1, None),
    ]
