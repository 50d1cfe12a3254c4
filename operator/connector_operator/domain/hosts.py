"""Which platform URLs the operator may call: the platform team's host allowlist.

A tenant writes `spec.apiURL`; the platform team decides where the operator may send account
secrets. So every URL is checked here before a single byte leaves the operator, and a URL outside
the list is a terminal verdict for the object (`APIHostNotAllowed`), never a request.

A pattern is `host`, `host:port` or `host:*`. `*` stands for at least one character within one
DNS label (`api.openconnectors.*.ext.hana.ondemand.com` matches `…eu10…` but neither `…a.b…` nor
an empty label), as in TLS certificates, so a pattern can never widen to a whole other domain.
Without a port only the scheme's default port matches (443 for https, 80 for http). Plain http is
refused unless the operator was started with `--allow-insecure-http` (the local simulator in tests
and the demo). Names are compared as text, lowercased and without a trailing dot: the allowlist
speaks of names, and what a name resolves to is the platform team's DNS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from connector_operator.api.fields import API_URL_PATTERN

DEFAULT_PORTS = {"https": 443, "http": 80}
ANY_PORT = -1
API_URL = re.compile(API_URL_PATTERN)  # the CRD checks the same shape


@dataclass(frozen=True)
class HostPattern:
    labels: tuple[str, ...]
    port: int | None  # None: the scheme's default port; ANY_PORT: any

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        pattern = text.strip().lower()
        host, port = pattern, None
        if pattern.startswith("["):  # an IPv6 literal: [::1] or [::1]:8443
            end = pattern.find("]")
            if end < 0:
                raise ValueError(f"host pattern {text!r}: unclosed '['")
            host, rest = pattern[1:end], pattern[end + 1 :]
            port = _port(text, rest[1:]) if rest.startswith(":") else None
            if rest and not rest.startswith(":"):
                raise ValueError(f"host pattern {text!r}: unexpected {rest!r} after ']'")
            return cls((host,), port)
        if ":" in pattern:
            host, port_text = pattern.rsplit(":", 1)
            port = _port(text, port_text)
        host = host.rstrip(".")
        labels = tuple(host.split("."))
        if not host or any(not label for label in labels) or any(c in host for c in "/?#@[]\\ "):
            raise ValueError(f"host pattern {text!r}: not a host name")
        return cls(labels, port)

    def matches(self, host: str, port: int, default_port: int) -> bool:
        if self.port != ANY_PORT and port != (default_port if self.port is None else self.port):
            return False
        labels = tuple(host.split("."))
        return len(labels) == len(self.labels) and all(
            _label_matches(label, pattern) for label, pattern in zip(labels, self.labels, strict=True)
        )


def _label_matches(label: str, pattern: str) -> bool:
    """`*` is at least one character; everything else is literal (no fnmatch: its `*` matches an
    empty label, and its `?` and `[…]` are no part of this syntax)."""
    if "*" not in pattern:
        return label == pattern
    return re.fullmatch(".+".join(map(re.escape, pattern.split("*"))), label) is not None


def _port(text: str, port: str) -> int:
    if port == "*":
        return ANY_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"host pattern {text!r}: port must be a number or '*'")
    return int(port)


def parse_patterns(values: Iterable[str]) -> tuple[HostPattern, ...]:
    """Patterns from flag or environment values, each comma- or space-separated."""
    return tuple(HostPattern.parse(p) for value in values for p in value.replace(",", " ").split())


@dataclass(frozen=True)
class HostPolicy:
    patterns: tuple[HostPattern, ...]
    allow_insecure_http: bool = False

    @classmethod
    def from_settings(cls, hosts: Iterable[str], allow_insecure_http: bool) -> HostPolicy:
        return cls(parse_patterns(hosts), allow_insecure_http)

    def refusal(self, url: str) -> str | None:
        """None when the operator may call `url`; otherwise why not, in words for a condition."""
        shape = API_URL.fullmatch(url)
        if shape is None:
            return (
                "the API URL must be http(s)://host[:port]/.../elements/api-v2, with no user "
                "information, query, fragment or escaped characters"
            )
        scheme, host, port_text = shape[1], shape[2].lower().rstrip("."), shape[3]
        if scheme == "http" and not self.allow_insecure_http:
            return "plain http is not allowed by the operator (https only)"
        default_port = DEFAULT_PORTS[scheme]
        port = int(port_text) if port_text else default_port
        bare = host.removeprefix("[").removesuffix("]")
        if any(p.matches(bare, port, default_port) for p in self.patterns):
            return None
        shown = f"{host}:{port_text}" if port_text else host
        return f"host {shown!r} is not in the operator's allowed API hosts"
