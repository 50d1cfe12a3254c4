"""Concurrent load: the benchmark drives thousands of calls, so the basics must hold under concurrency."""

from __future__ import annotations

import asyncio

import httpx

from open_connectors_simulator.control import AsyncSimulatorControl
from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.support import closeio_body

CALLS = 100
CONCURRENCY = 30


async def test_concurrent_creates_and_reads(simulator: SimulatorHandle) -> None:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    gate = asyncio.Semaphore(CONCURRENCY)
    async with (
        httpx.AsyncClient(
            base_url=simulator.api_url, headers=simulator.headers, timeout=10, limits=limits
        ) as client,
        AsyncSimulatorControl(simulator.base_url) as control,
    ):

        async def create_and_read(n: int) -> int:
            async with gate:
                created = await client.post("/instances", json=closeio_body(name=f"c{n}", tags=["load"]))
                assert created.status_code == 200, created.text
                instance_id: int = created.json()["id"]
                fetched = await client.get(f"/instances/{instance_id}")
                assert fetched.json()["name"] == f"c{n}"
                return instance_id

        ids = await asyncio.gather(*(create_and_read(n) for n in range(CALLS)))
        assert len(set(ids)) == CALLS
        assert await control.counters() == {"GET /instances/{id}": CALLS, "POST /instances": CALLS}
        assert len(await control.instances()) == CALLS
        page = await client.get("/instances", params={"tags[]": "load", "pageSize": 50})
        assert len(page.json()) == 50
        assert "Elements-Next-Page-Token" in page.headers
        await control.reset()
        assert await control.instances() == []
