"""Output: aligned tables (kubectl's look), the tree's branches, ages, colours, JSON and YAML, and
`safe`, which every text from the cluster passes through before it is printed as text.

Colours only on a terminal: `Palette.for_stream` turns them on when the stream is a TTY and
NO_COLOR (https://no-color.org) is unset or empty. Widths are measured on the plain text and the
colour is put around the padded cell, so columns line up with or without it.

Why `safe`: reasons, messages, status.account and Event texts are written by tenants, or by the
operator copying the platform's words. Printed raw, an escape sequence in them acts on the
reader's terminal (OSC 52 writes the clipboard; a cursor move hides rows of `status -A` from an
administrator), a bidi override reorders what is read, and one 1 MB reason pads every row of a
table to 1 MB. JSON and YAML escape such characters by themselves (json.dumps' ASCII output,
yaml.safe_dump's double-quoted escapes), so only text output needs it.
"""

from __future__ import annotations

import json
import os
import unicodedata
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
CELL_LIMIT = 200  # characters of a table cell, or of a value on a line of its own
MESSAGE_LIMIT = 2000  # a message: the last column of `why` and `plan` (never padded), an error
ELLIPSIS = "…"
# Controls (C0, DEL, C1), format characters (bidi embeddings, overrides and isolates, zero-width
# ones, tags), lone surrogates, and the line and paragraph separators some terminals break on.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def safe(text: str, limit: int = CELL_LIMIT) -> str:
    """`text` as one line a terminal shows and never acts on: tab, newline and carriage return
    become a space, every other unsafe character a visible escape (`\\x1b`, `\\u202e`), and
    what is longer than `limit` characters (counted as shown) is cut with an ellipsis."""
    head = text[: limit + 1]  # escaping only lengthens: more of the input is never shown
    shown = head if head.isprintable() else "".join(_visible(c) for c in head)
    return shown if len(shown) <= limit else shown[: limit - 1] + ELLIPSIS


def _visible(char: str) -> str:
    if char in "\t\n\r":
        return " "
    if unicodedata.category(char) not in UNSAFE_CATEGORIES:
        return char  # printable, or a space, private-use or unassigned character: inert
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


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


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    palette: Palette,
    colour: Colour,
    last: int = CELL_LIMIT,
) -> str:
    """Columns padded to their widest cell (the padding outside the colour); the last column is
    not padded (it may be long: `last` characters at most), and no line ends in spaces. Every
    cell is made `safe` first, so the widths count what is shown."""
    rows = [
        [safe(cell, last if i == len(row) - 1 else CELL_LIMIT) for i, cell in enumerate(row)] for row in rows
    ]
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
