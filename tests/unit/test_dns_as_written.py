"""Platform hosts are looked up as written, never under the pod's DNS search domains
(openconnectors/transport.py `AsWritten`, tenant-findings N18). The resolver itself is the
system's; what this checks is the name handed to it (`getaddrinfo`, recorded)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from connector_operator.openconnectors.transport import AsWritten, absolute


@pytest.mark.parametrize(
    ("host", "looked_up"),
    [
        ("oc.corp", "oc.corp."),  # ndots:5 tried oc.corp.<ns>.svc.cluster.local first
        ("api.openconnectors.ext.hana.ondemand.com", "api.openconnectors.ext.hana.ondemand.com."),
        ("api.example.", "api.example."),
        ("localhost", "localhost"),
        ("127.0.0.2", "127.0.0.2"),
        ("::1", "::1"),
    ],
)
def test_a_dotted_name_is_absolute_an_address_or_a_single_label_unchanged(host: str, looked_up: str) -> None:
    assert absolute(host) == looked_up


async def test_the_resolver_asks_the_system_for_the_absolute_name(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    resolved = await AsWritten().resolve("oc.corp", 443)
    assert asked == ["oc.corp."]
    assert resolved[0]["host"] == "127.0.0.1"
