"""`domain.hosts`: the platform team's allowlist of API hosts, and the one URL shape it accepts.

Covers: the default SAP hosts allowed and everything else refused; `*` matching within one DNS
label only; ports (default port only without one, `:port`, `:*`); case and a trailing dot; plain
http refused unless allowed; URLs that could steer a request elsewhere (user information, query,
fragment, escapes, a path not ending in /elements/api-v2 (or in it and more than one `/`), parser
tricks, empty host labels, `.` and `..` path segments) refused by shape; one trailing `/`, as
users paste the URL, accepted by the allowlist and the spec model alike; `*` standing for at least
one character; bad patterns rejected when the operator starts.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connector_operator.api.spec import parse_spec
from connector_operator.domain.hosts import HostPattern, HostPolicy, parse_patterns
from connector_operator.settings import DEFAULT_ALLOWED_API_HOSTS

DEFAULTS = HostPolicy.from_settings(DEFAULT_ALLOWED_API_HOSTS, allow_insecure_http=False)
LOCAL = HostPolicy.from_settings(["127.0.0.1:*", "[::1]:8443"], allow_insecure_http=True)
PATH = "/elements/api-v2"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openconnectors.us2.ext.hana.ondemand.com/elements/api-v2",
        "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2",
        "https://api.openconnectors.trial.us10.ext.hana.ondemand.com/elements/api-v2",
        "https://api.openconnectors.ext.hanatrial.ondemand.com/elements/api-v2",
        "https://API.OpenConnectors.eu10.ext.hana.ondemand.com./elements/api-v2",
        "https://api.openconnectors.us2.ext.hana.ondemand.com:443/elements/api-v2",
        "https://api.openconnectors.us2.ext.hana.ondemand.com/some/prefix/elements/api-v2",
    ],
)
def test_the_sap_hosts_are_allowed_by_default(url: str) -> None:
    assert DEFAULTS.refusal(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://evil.example/elements/api-v2", "not in the operator's allowed API hosts"),
        ("https://api.openconnectors.a.b.ext.hana.ondemand.com/elements/api-v2", "not in the operator's"),
        ("https://api.openconnectors.ext.hana.ondemand.com.evil.example/elements/api-v2", "not in"),
        ("https://xapi.openconnectors.ext.hana.ondemand.com/elements/api-v2", "not in"),
        ("https://api.openconnectors.us2.ext.hana.ondemand.com:8443/elements/api-v2", "not in"),
        ("http://api.openconnectors.us2.ext.hana.ondemand.com/elements/api-v2", "plain http"),
        ("https://127.0.0.1/elements/api-v2", "not in"),
    ],
)
def test_other_hosts_ports_and_plain_http_are_refused(url: str, why: str) -> None:
    refusal = DEFAULTS.refusal(url)
    assert refusal is not None
    assert why in refusal


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@api.openconnectors.ext.hana.ondemand.com/elements/api-v2",
        "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2?x=1",
        "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2#",
        "https://api.openconnectors.ext.hana.ondemand.com/any/path?x=1#/elements/api-v2",
        "https://api.openconnectors.ext.hana.ondemand.com/admin",
        "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2//",
        "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2/x",
        "https://evil.example\\@api.openconnectors.ext.hana.ondemand.com/elements/api-v2",
        "https://api.openconnectors.ext.hana.ondemand.com%2F@evil.example/elements/api-v2",
        "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2\n",
        "ftp://api.openconnectors.ext.hana.ondemand.com/elements/api-v2",
        "HTTPS://api.openconnectors.ext.hana.ondemand.com/elements/api-v2",
    ],
)
def test_urls_that_could_steer_a_request_are_refused_by_shape(url: str) -> None:
    refusal = DEFAULTS.refusal(url)
    assert refusal is not None
    assert "must be http(s)://host[:port]/.../elements/api-v2" in refusal
    # The spec model (and the CRD generated from it) carries the same shape: these are never stored.
    with pytest.raises(ValidationError, match="apiURL"):
        parse_spec({"connectorKey": "closeio", "credentialsSecretRef": {"name": "a"}, "apiURL": url})


@pytest.mark.parametrize(
    "url",
    [
        # An empty label: `*` matched it, and "…openconnectors..ext…" passed the default allowlist.
        "https://api.openconnectors..ext.hana.ondemand.com/elements/api-v2",
        "https://api.openconnectors.us2..ext.hana.ondemand.com/elements/api-v2",
        "https://api.openconnectors.us2.ext.hana.ondemand.com../elements/api-v2",
        "https://api.openconnectors.-.ext.hana.ondemand.com/elements/api-v2",
        # Dot segments: httpx collapses them, so the path sent is not the path checked.
        "https://api.openconnectors.ext.hana.ondemand.com/../elements/api-v2",
        "https://api.openconnectors.ext.hana.ondemand.com/./elements/api-v2",
        "https://api.openconnectors.ext.hana.ondemand.com/x/../elements/api-v2",
        "https://api.openconnectors.ext.hana.ondemand.com/elements/../elements/api-v2",
        "https://api.openconnectors.ext.hana.ondemand.com/.../elements/api-v2",
    ],
)
def test_empty_host_labels_and_dot_segments_are_refused_by_shape(url: str) -> None:
    refusal = DEFAULTS.refusal(url)
    assert refusal is not None
    assert "must be http(s)://host[:port]/.../elements/api-v2" in refusal
    with pytest.raises(ValidationError, match="apiURL"):
        parse_spec({"connectorKey": "closeio", "credentialsSecretRef": {"name": "a"}, "apiURL": url})


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openconnectors.us2.ext.hana.ondemand.com/elements/api-v2/",
        "https://api.openconnectors.us2.ext.hana.ondemand.com:443/some/prefix/elements/api-v2/",
    ],
)
def test_one_trailing_slash_is_accepted_by_the_allowlist_and_the_spec(url: str) -> None:
    """Issue 18: users paste `.../elements/api-v2/`; it used to stall as an invalid spec."""
    assert DEFAULTS.refusal(url) is None
    spec = parse_spec({"connectorKey": "closeio", "credentialsSecretRef": {"name": "a"}, "apiURL": url})
    assert spec.api_url == url  # as written: the operator drops the slash where it uses the URL


@pytest.mark.parametrize(
    "path",
    ["/v1.2/elements/api-v2", "/.well-known/elements/api-v2", "/a..b/elements/api-v2", "/~x/elements/api-v2"],
)
def test_segments_with_dots_that_are_not_dot_segments_are_allowed(path: str) -> None:
    assert DEFAULTS.refusal(f"https://api.openconnectors.ext.hana.ondemand.com{path}") is None


def test_a_wildcard_stands_for_at_least_one_character() -> None:
    # The URL shape already refuses empty labels; the pattern does not rely on it.
    assert not HostPattern.parse("api.openconnectors.*.ext.hana.ondemand.com").matches(
        "api.openconnectors..ext.hana.ondemand.com", 443, 443
    )
    assert not HostPattern.parse("api-*.corp.example").matches("api-.corp.example", 443, 443)
    assert HostPattern.parse("api-*.corp.example").matches("api-x.corp.example", 443, 443)
    assert HostPattern.parse("*.example").matches("a.example", 443, 443)
    assert not HostPattern.parse("*.example").matches(".example", 443, 443)


def test_ports_and_ipv6_literals() -> None:
    assert LOCAL.refusal(f"http://127.0.0.1:8081{PATH}") is None
    assert LOCAL.refusal(f"http://127.0.0.1{PATH}") is None  # ':*' takes the default port too
    assert LOCAL.refusal(f"http://127.0.0.2:8081{PATH}") is not None
    assert LOCAL.refusal(f"https://[::1]:8443{PATH}") is None
    assert LOCAL.refusal(f"https://[::1]:8444{PATH}") is not None
    only_default = HostPolicy.from_settings(["platform.example"], allow_insecure_http=True)
    assert only_default.refusal(f"https://platform.example{PATH}") is None
    assert only_default.refusal(f"http://platform.example:80{PATH}") is None
    assert only_default.refusal(f"https://platform.example:8443{PATH}") is not None


def test_a_wildcard_stands_for_part_of_one_label() -> None:
    policy = HostPolicy.from_settings(["*.example", "api-*.corp.example:8443"], allow_insecure_http=False)
    assert policy.refusal(f"https://a.example{PATH}") is None
    assert policy.refusal(f"https://a.b.example{PATH}") is not None
    assert policy.refusal(f"https://example{PATH}") is not None
    assert policy.refusal(f"https://api-eu.corp.example:8443{PATH}") is None
    assert policy.refusal(f"https://api-eu.x.corp.example:8443{PATH}") is not None


def test_patterns_come_comma_or_space_separated() -> None:
    assert len(parse_patterns(["a.example, b.example c.example", "d.example"])) == 4


@pytest.mark.parametrize(
    "pattern",
    ["a.example:http", "a.example:0", "a.example:70000", "a..example", "a/b", "user@a.example", "[::1"],
)
def test_bad_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(ValueError, match="host pattern"):
        HostPattern.parse(pattern)
