"""Output: aligned tables (kubectl's look), the tree's branches, ages, colours, JSON and YAML.

Colours only on a terminal: `Palette.for_stream` turns them on when the stream is a TTY and
NO_COLOR (https://no-color.org) is unset or empty. Widths are measured on the plain text and the
colour is put around the padded cell, so columns line up with or without it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from kubectl_openconnectors.tree import Node

GAP = "   "
GOOD = {"True", "Running", "Succeeded", "Available", "Healthy", "Normal"}
BAD = {"False", "Failed", "NotFound", "Warning"}
CODES = {"green": "32", "red": "31", "yellow": "33", "bold": "1"}


@dataclass(frozen=True)
class Palette:
    enabled: bool

    @classmethod
    def for_stream(cls, stream: TextIO) -> Palette:
        tty = hasattr(stream, "isatty") and stream.isatty()
        return cls(enabled=bool(tty) and not os.environ.get("NO_COLOR"))

    def paint(self, text: str, colour: str) -> str:
        if not self.enabled or not text.strip():
            return text
        return f"\033[{CODES[colour]}m{text}\033[0m"

    def status(self, text: str) -> str:
        """A condition status, a phase or an Event type, coloured by what it means."""
        value = text.strip()
        if value in GOOD:
            return self.paint(text, "green")
        if value in BAD:
            return self.paint(text, "red")
        return self.paint(text, "yellow") if value in ("Unknown", "Pending") else text


Colour = Callable[[int, str], str]  # (column, cell) -> the cell as printed


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], palette: Palette, colour: Colour) -> str:
    """Columns padded to their widest cell (the padding outside the colour); the last column is
    not padded (it may be long), and no line ends in spaces."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str], paint: Colour) -> str:
        padded = [paint(i, cell) + " " * (widths[i] - len(cell)) for i, cell in enumerate(cells)]
        return GAP.join(padded).rstrip()

    head = line(headers, lambda _, header: palette.paint(header, "bold"))
    return "\n".join([head, *(line(row, colour) for row in rows)])


def age(timestamp: str, now: datetime) -> str:
    """kubectl's short age (`45s`, `3m12s`, `5h`, `12d`), "" without a time, "<invalid>" for one
    in the future beyond a second of clock skew."""
    when = parse_time(timestamp)
    if when is None:
        return ""
    seconds = int((now - when).total_seconds())
    if seconds < -1:
        return "<invalid>"
    return short_duration(max(seconds, 0))


def short_duration(seconds: int) -> str:
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    return f"{days}d" if days < 3 * 365 else f"{days // 365}y"


def parse_time(timestamp: str) -> datetime | None:
    """An RFC 3339 time as the API server writes it, or kopf's (naive ones are UTC)."""
    if not timestamp:
        return None
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


# The tree


TREE_HEADERS = ("NAME", "READY", "SYNCED", "REASON", "AGE", "DETAIL")


def tree_rows(nodes: Sequence[Node], moment: datetime) -> list[list[str]]:
    rows: list[list[str]] = []
    for node in nodes:
        _branch(node, "", "", rows, moment)
    return rows


def _branch(node: Node, lead: str, indent: str, rows: list[list[str]], moment: datetime) -> None:
    rows.append(
        [lead + label(node), node.ready, node.synced, node.reason, age(node.created, moment), node.detail]
    )
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        _branch(child, indent + ("└─ " if last else "├─ "), indent + ("   " if last else "│  "), rows, moment)


def label(node: Node) -> str:
    """`Kind namespace/name`; a grouping line has its title only."""
    if not node.name:
        return node.detail
    where = f"{node.namespace}/{node.name}" if node.namespace else node.name
    return f"{node.kind} {where}"


def render_tree(nodes: Sequence[Node], palette: Palette, moment: datetime) -> str:
    rows = tree_rows(nodes, moment)
    for row, node in zip(rows, (n for top in nodes for n in top.walk()), strict=True):
        if not node.name:
            row[-1] = ""  # a grouping line's title is its label, not a detail

    def colour(column: int, cell: str) -> str:
        if column in (1, 2):
            return palette.status(cell)
        if column == 3:
            return palette.status(cell) if cell in GOOD | BAD else palette.paint(cell, "yellow")
        return cell

    return table(TREE_HEADERS, rows, palette, colour) if rows else "No ConnectorInstances or accounts found."


# Machine-readable output


def dump(data: Any, fmt: str) -> str:
    """`json` (2-space indent) or `yaml`; keys keep the order the commands build them in."""
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")
