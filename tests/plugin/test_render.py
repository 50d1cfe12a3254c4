"""Rendering (unit): the tree's branches and columns, ages as kubectl prints them, colours only on
a terminal and never with NO_COLOR, and the machine-readable forms."""

from __future__ import annotations

import io
import json
import os
import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from kubectl_openconnectors import render
from kubectl_openconnectors.render import Palette
from kubectl_openconnectors.tree import Node

ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat().replace("+00:00", "Z")


def sample() -> list[Node]:
    pod = Node(
        "Pod", "sales", "shop-1", ready="True", reason="Running", created=ago(minutes=3), detail="envFrom"
    )
    token = Node("Secret", "sales", "crm-token", created=ago(minutes=4), children=[pod])
    crm = Node(
        "ConnectorInstance", "sales", "crm", "True", "True", "Available", ago(minutes=5), children=[token]
    )
    broken = Node(
        "ConnectorInstance", "sales", "broken", "False", "False", "CredentialsRejected", ago(hours=30)
    )
    broken.children = [Node("Secret", "sales", "broken-token", reason="NotFound")]
    shared = Node(
        "ClusterConnectorAccount", "", "shared", "True", "", "Healthy", ago(days=3), children=[crm, broken]
    )
    own = Node("Credentials", "", "", detail="own credentials (spec.credentialsSecretRef)")
    return [shared, own]


def test_the_tree_has_branches_aligned_columns_and_ages() -> None:
    text = render.render_tree(sample(), Palette(enabled=False), NOW)
    assert text.splitlines() == [
        "NAME                                          READY   SYNCED   REASON                AGE   DETAIL",
        "ClusterConnectorAccount shared                True             Healthy               3d",
        "├─ ConnectorInstance sales/crm                True    True     Available             5m",
        "│  └─ Secret sales/crm-token                                                         4m",
        "│     └─ Pod sales/shop-1                     True             Running               3m    envFrom",
        "└─ ConnectorInstance sales/broken             False   False    CredentialsRejected   30h",
        "   └─ Secret sales/broken-token                                NotFound",
        "own credentials (spec.credentialsSecretRef)",
    ]
    assert ANSI.search(text) is None
    assert render.render_tree([], Palette(enabled=False), NOW) == "No ConnectorInstances or accounts found."


def test_colours_mark_what_is_good_and_bad_and_keep_the_columns() -> None:
    plain = render.render_tree(sample(), Palette(enabled=False), NOW)
    coloured = render.render_tree(sample(), Palette(enabled=True), NOW)
    assert ANSI.sub("", coloured) == plain
    assert "\x1b[32mTrue" in coloured  # green
    assert "\x1b[31mFalse" in coloured  # red
    assert "\x1b[31mNotFound" in coloured
    assert "\x1b[1mNAME" in coloured  # bold headers
    assert "\x1b[33mCredentialsRejected" in coloured  # another reason: yellow


@pytest.mark.parametrize(
    ("tty", "no_color", "enabled"),
    [(True, None, True), (True, "1", False), (True, "", True), (False, None, False)],
)
def test_colours_only_on_a_terminal_without_no_color(
    monkeypatch: pytest.MonkeyPatch, tty: bool, no_color: str | None, enabled: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)  # https://no-color.org: set and not empty
    if tty:
        leader, follower = os.openpty()  # a real terminal device, as a user's shell has
        with open(follower, "w") as stream:
            assert Palette.for_stream(stream).enabled is enabled
        os.close(leader)
    else:
        assert Palette.for_stream(io.StringIO()).enabled is enabled


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
     (10 * 3600, "10h"), (3 * 86400, "3d"), (4 * 365 * 86400, "4y")],
)  # fmt: skip
def test_ages_as_kubectl_prints_them(seconds: int, shown: str) -> None:
    assert render.age(ago(seconds=seconds), NOW) == shown


def test_ages_of_odd_times() -> None:
    assert render.age("", NOW) == ""
    assert render.age("not a time", NOW) == ""
    assert render.age(ago(seconds=-30), NOW) == "<invalid>"
    # kopf writes naive times: they are UTC.
    assert render.age((NOW - timedelta(seconds=5)).replace(tzinfo=None).isoformat(), NOW) == "5s"


def test_json_and_yaml_keep_the_order_they_are_given() -> None:
    data = {"namespace": "sales", "items": [sample()[0].as_dict()], "notes": []}
    assert json.loads(render.dump(data, "json")) == data
    assert yaml.safe_load(render.dump(data, "yaml")) == data
    assert list(yaml.safe_load(render.dump(data, "yaml"))["items"][0]) == list(data["items"][0])
