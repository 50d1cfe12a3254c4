"""What the command line prints (unit): text that comes from the cluster (condition reasons and
messages, status.account, Event messages, the API server's error texts) reaches a terminal with
its control characters, C1 controls, DEL and bidi/format characters shown as visible escapes,
each table cell bounded, while the plugin's own colours stay; JSON and YAML escape them by
themselves. And the help says truthfully which command reads Secret values."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_openconnectors import actions, cli, render, why
from kubectl_openconnectors.render import Palette
from kubectl_openconnectors.tree import Node
from tests.plugin.conftest import invoke

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)
CLEAR_AND_UP = "\x1b[2K\x1b[1A"  # erases the line above: hides a row from whoever reads the table
CLIPBOARD = "\x1b]52;c;AAAA\x07"  # OSC 52: writes the reader's clipboard
CSI_C1 = "\x9b2K"  # the same erase, with the one-byte C1 introducer
RLO = "\u202e"  # right-to-left override: `gnp.exe` reads as `exe.png`
ISOLATE = "\u2066x\u2069"
HUGE = "R" * 1_000_000
HOSTILE = ("Bad" + CLEAR_AND_UP, CLIPBOARD + "msg", CSI_C1, "a" + RLO + "gnp.exe", ISOLATE, "x\x7fy\x00z")
SGR = re.compile(r"\x1b\[[0-9;]*m")  # the plugin's own colours


def unsafe(text: str) -> set[str]:
    """The characters a terminal would act on or reorder: controls (but the line breaks between
    lines), format and bidi characters, line and paragraph separators, lone surrogates."""
    return {c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")}


def longest_line(text: str) -> int:
    return max(len(line) for line in text.splitlines())


@pytest.mark.parametrize("text", [*HOSTILE, "tab\there\nnewline\r"])
def test_safe_shows_every_control_and_bidi_character_as_a_visible_escape(text: str) -> None:
    shown = render.safe(text)
    assert unsafe(shown) == set()
    assert "\n" not in shown
    escaped = {"\x1b": r"\x1b", "\x07": r"\x07", "\x9b": r"\x9b", RLO: r"\u202e", "\x7f": r"\x7f"}
    for raw, visible in escaped.items():
        assert (raw in text) == (visible in shown)


def test_safe_keeps_plain_text_and_bounds_its_length() -> None:
    for plain in ("CredentialsRejected", "Größe: 日本語 ok", "ConnectorInstance sales/crm"):
        assert render.safe(plain) == plain
    assert render.safe("a\tb\nc") == "a b c"  # in a cell, whitespace that breaks lines is a space
    capped = render.safe(HUGE)
    assert len(capped) == render.CELL_LIMIT
    assert capped.endswith("…")
    assert len(render.safe(HUGE, render.MESSAGE_LIMIT)) == render.MESSAGE_LIMIT
    # Escaping makes text longer: the cap counts what is shown.
    assert len(render.safe("\x1b" * 150)) == render.CELL_LIMIT


def test_a_table_of_hostile_cells_stays_a_table_and_keeps_its_own_colours() -> None:
    rows = [[text, "False", HUGE] for text in HOSTILE] + [[HUGE, "True", "fine"]]
    plain = render.table(("NAME", "READY", "MESSAGE"), rows, Palette(enabled=False), lambda _, cell: cell)
    assert unsafe(plain) == set()
    assert len(plain.splitlines()) == len(rows) + 1  # no cell added or hid a line
    assert longest_line(plain) <= 2 * render.CELL_LIMIT + render.CELL_LIMIT + 2 * len(render.GAP)
    palette = Palette(enabled=True)
    coloured = render.table(("NAME", "READY", "MESSAGE"), rows, palette, lambda i, c: palette.status(c))
    assert "\x1b[31mFalse\x1b[0m" in coloured  # the plugin's colours stay
    assert unsafe(SGR.sub("", coloured)) == set()
    assert SGR.sub("", coloured) == plain


def test_the_status_tree_with_hostile_reasons_names_and_details() -> None:
    children = [
        Node("ConnectorInstance", "sales", f"i{n}", "False", "False", text, "", detail=f"Secret/{text}")
        for n, text in enumerate([*HOSTILE, HUGE])
    ]
    account = Node("ClusterConnectorAccount", "", "shared", "True", "", CLIPBOARD, children=children)
    text = render.render_tree([account], Palette(enabled=False), NOW)
    assert unsafe(text) == set()
    assert len(text.splitlines()) == 1 + 1 + len(children)  # the header, the account, its instances
    assert longest_line(text) <= 6 * render.CELL_LIMIT + 5 * len(render.GAP)


def hostile_instance(huge: str = HUGE) -> dict[str, Any]:
    conditions = [
        {"type": "Ready", "status": "False", "reason": huge, "message": huge},
        {"type": "Synced", "status": "False", "reason": "Bad" + CLEAR_AND_UP, "message": CLIPBOARD},
        {"type": "Stalled", "status": "True", "reason": RLO + "x", "message": ISOLATE + "\nline two"},
        {"type": "Reconciling", "status": "True", "reason": CSI_C1, "message": "x\x7f"},
    ]
    status = {
        "conditions": conditions,
        "account": "Secret/" + CLIPBOARD,
        "plannedAction": CLEAR_AND_UP + huge,
        "nextAttemptAt": CLIPBOARD,
    }
    meta = {"name": "crm", "namespace": "sales", "uid": "u-1"}
    return {"metadata": meta, "spec": {"connectorKey": "closeio"}, "status": status}


def test_why_shows_hostile_conditions_account_and_events_escaped_and_bounded() -> None:
    events = [
        {"type": "Warning", "reason": text, "message": text + HUGE, "lastTimestamp": "2026-01-02T11:00:00Z"}
        for text in HOSTILE
    ]
    data = why.report(hostile_instance(), events, limit=10)
    text = why.render_report(data, Palette(enabled=False), NOW)
    assert unsafe(text) == set()
    assert r"\x1b]52;c;AAAA\x07" in text  # shown, not acted on
    assert longest_line(text) <= 4 * render.CELL_LIMIT + render.MESSAGE_LIMIT + 4 * len(render.GAP)
    conditions = text.split("Conditions:\n")[1].split("\n\n")[0].splitlines()
    assert len(conditions) == 1 + 4  # the newline in Stalled's message made no row of its own
    coloured = why.render_report(data, Palette(enabled=True), NOW)
    assert unsafe(SGR.sub("", coloured)) == set()


def test_an_actions_message_is_escaped() -> None:
    request = actions.Request(
        "adopt", "sales", "crm", {"spec.instanceID": 4}, lambda _: actions.Check("pending")
    )
    request.result, request.message = "failed", f"AdoptionConflict: {CLEAR_AND_UP}{CLIPBOARD}{RLO}{HUGE}"
    for palette in (Palette(enabled=False), Palette(enabled=True)):
        line = SGR.sub("", cli._request_line(request, palette))
        assert unsafe(line) == set()
        assert len(line) <= render.MESSAGE_LIMIT + 100
        assert line.startswith("adopt sales/crm failed: AdoptionConflict: \\x1b[2K")


def test_json_and_yaml_escape_controls_by_themselves() -> None:
    data = why.report(hostile_instance("R" * 5000), [], limit=10)  # PyYAML's pure Python is slow
    for fmt, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        dumped = render.dump(data, fmt)
        assert unsafe(dumped) == set(), fmt
        assert load(dumped) == data, fmt  # and nothing is lost


def test_errors_printed_by_the_command_line_are_escaped(tmp_path: Path) -> None:
    """The kubeconfig loader's error names the context asked for: the one error text the command
    line prints that is reachable without an API server."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": []}))
    run = invoke(["status", "--kubeconfig", str(kubeconfig), "--context", CLIPBOARD + RLO])
    assert run.code == 5
    assert run.stderr.startswith("error: ")
    assert unsafe(run.stderr) == set()
    assert r"\x1b]52;c;AAAA\x07\u202e" in run.stderr


def test_the_help_says_which_command_reads_secret_values() -> None:
    """status, why and the actions never read a Secret's values; plan reads those of its file and
    their stored copies (README, "kubectl plugin")."""
    top = " ".join(invoke(["--help"]).stdout.split())
    assert "never reads a Secret's values" not in top
    assert "plan reads the Secrets of its files and their stored copies" in top
    assert "status, why and the actions never read a Secret's values" in top
    plan_help = " ".join(invoke(["plan", "--help"]).stdout.split())
    assert "without a value" not in plan_help
    assert "key names" in plan_help
