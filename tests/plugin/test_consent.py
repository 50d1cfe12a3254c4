"""`authorize`'s redirect side (unit, kubectl_openconnectors/consent.py and the judging of
authorize.py): which consent URLs it opens, which redirects it takes a grant from (the state,
the sizes), which addresses it listens on (loopback only), and the listener as a real HTTP server
on a loopback port: other paths 404, a wrong state is answered and does not end the wait, the
matching redirect does, and no request line (the code in it) reaches stderr. The command on the
API server: test_authorize.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from hack.controlplane.cluster import free_port
from kubectl_openconnectors import authorize
from kubectl_openconnectors.actions import Check
from kubectl_openconnectors.consent import (
    CODE_LIMIT,
    Address,
    Grant,
    Listener,
    StateMismatch,
    address,
    callback_address,
    consent,
    grant_from,
    paste,
)
from kubectl_openconnectors.errors import ExitCode, PluginError

STATE = "st-4f0c9a"
CODE = "c0de-5ecret-9b1e"
CALLBACK = "http://127.0.0.1:8765/callback"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8765", Address("127.0.0.1", 8765)),
        ("127.0.0.2:8765", Address("127.0.0.2", 8765)),
        ("[::1]:8765", Address("::1", 8765)),
    ],
)
def test_listen_takes_a_loopback_address(value: str, expected: Address) -> None:
    assert address(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "0.0.0.0:8765",
        "localhost:8765",  # RFC 8252 8.3: it may resolve to the other loopback address
        "[::]:8765",
        "192.168.1.10:8765",
        "example.com:8765",
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        "127.0.0.1:8765/callback",
        "user@127.0.0.1:8765",
        ":8765",
    ],
)
def test_listen_refuses_any_other_address(value: str) -> None:
    with pytest.raises(PluginError) as refused:
        address(value)
    assert refused.value.code is ExitCode.USAGE


def test_the_default_receiver_is_the_callbacks_own_loopback_http_address() -> None:
    assert callback_address(CALLBACK) == Address("127.0.0.1", 8765)
    assert callback_address("http://127.0.0.1/cb") == Address("127.0.0.1", 80)
    for elsewhere in (
        "http://localhost:8765/cb",
        "https://127.0.0.1:8765/cb",
        "https://proxy.example/cb",
        "http://10.0.0.1:80/cb",
        "",
    ):
        assert callback_address(elsewhere) is None  # --paste


def test_the_consent_url_must_be_http_and_carry_one_state() -> None:
    url = f"https://provider.example/authorize?client_id=a&state={STATE}&redirect_uri=http%3A%2F%2Fx%2Fcb"
    found = consent(url, "http://x/cb")
    assert found.callback == "http://x/cb"
    no_redirect = f"https://provider.example/authorize?state={STATE}"
    assert consent(no_redirect, CALLBACK).callback == CALLBACK
    with pytest.raises(PluginError, match=r"elsewhere than spec\.oauth\.callbackURL"):
        consent(url, CALLBACK)
    refused = [
        f"javascript:alert(1)//?state={STATE}",
        f"file:///etc/passwd?state={STATE}",
        f"https://provider.example/a b?state={STATE}",
        f"https://provider.example/\x1b]52;c;AAAA\x07?state={STATE}",
        f"https://provider.example/ä?state={STATE}",
        "https://provider.example/authorize?client_id=a",
        f"https://provider.example/authorize?state={STATE}&state=other",
        "https://provider.example/authorize?state=",
        "https:///authorize?state=x",
    ]
    for url in refused:
        with pytest.raises(PluginError):
            consent(url, CALLBACK)


def test_the_consent_url_opened_carries_a_session_of_this_run() -> None:
    """A reader of the object knows the operator's state (it is in status): the redirect must come
    back with this run's own session, which nobody else saw."""
    url = f"https://provider.example/authorize?client_id=a&state={STATE}&scope=a+b"
    first, second = consent(url, CALLBACK), consent(url, CALLBACK)
    assert first.state.startswith(f"{STATE}.")
    assert first.state != second.state
    query = parse_qs(urlsplit(first.url).query)
    assert query == {"client_id": ["a"], "state": [first.state], "scope": ["a b"]}
    with pytest.raises(StateMismatch):
        grant_from(urlencode({"code": CODE, "state": STATE}), first.state)  # the operator's alone
    assert grant_from(urlencode({"code": CODE, "state": first.state}), first.state).code == CODE


def test_a_grant_only_from_the_consents_state_and_within_bounds() -> None:
    assert grant_from(f"code={CODE}&state={STATE}", STATE) == Grant(STATE, code=CODE)
    assert grant_from(f"error=access_denied&state={STATE}", STATE) == Grant(STATE, error="access_denied")
    assert grant_from(f"code={'x' * CODE_LIMIT}&state={STATE}", STATE).code == "x" * CODE_LIMIT
    for wrong in (f"code={CODE}&state=other", f"code={CODE}", f"code={CODE}&state={STATE}&state={STATE}"):
        with pytest.raises(StateMismatch):
            grant_from(wrong, STATE)
    malformed = [
        f"state={STATE}",  # neither
        f"code={CODE}&error=access_denied&state={STATE}",  # both
        f"code=a&code=b&state={STATE}",
        f"code=&state={STATE}",
        f"code={'x' * (CODE_LIMIT + 1)}&state={STATE}",
        f"code=a%0Ab&state={STATE}",  # a control character
        f"error={'e' * 65}&state={STATE}",
        f"error=access%20denied&state={STATE}",
        f"error=%1b%5b2K&state={STATE}",
    ]
    for query in malformed:
        with pytest.raises(PluginError) as refused:
            grant_from(query, STATE)
        assert not isinstance(refused.value, StateMismatch)
        assert CODE not in str(refused.value)
    assert CODE not in repr(Grant(STATE, code=CODE))


def test_paste_reads_one_line_and_refuses_what_is_not_a_redirect(tmp_path: Any) -> None:
    def pasted(text: str) -> Grant:
        path = tmp_path / "stdin"
        path.write_text(text)
        with path.open() as stream:
            return paste(stream, STATE)

    assert pasted(f"{CALLBACK}?code={CODE}&state={STATE}\nmore\n") == Grant(STATE, code=CODE)
    for text in ("", "\n", f"code={CODE}&state={STATE}\n", f"ftp://x/cb?code={CODE}&state={STATE}\n"):
        with pytest.raises(PluginError) as refused:
            pasted(text)
        assert CODE not in str(refused.value)
    with pytest.raises(PluginError, match="over 16384 characters"):
        pasted(f"{CALLBACK}?code={CODE}&state={STATE}&pad={'p' * 20000}\n")


# The listener, a real HTTP server


@pytest.fixture
def listening() -> Iterator[tuple[Listener, str, list[str]]]:
    warnings: list[str] = []
    port = free_port()
    with Listener(Address("127.0.0.1", port), "/callback", STATE, warnings.append) as listener:
        yield listener, f"http://127.0.0.1:{port}", warnings


def waiting_for(listener: Listener, timeout: float) -> Callable[[], Grant | PluginError]:
    """The listener's wait on a thread; the returned function joins it and gives its outcome."""
    outcome: list[Grant | PluginError] = []

    def wait() -> None:
        try:
            outcome.append(listener.wait(timeout))
        except PluginError as error:
            outcome.append(error)

    thread = threading.Thread(target=wait)
    thread.start()

    def result() -> Grant | PluginError:
        thread.join(timeout + 5)
        return outcome[0]

    return result


def test_the_listener_answers_the_redirect_path_only_and_waits_for_the_matching_state(
    listening: tuple[Listener, str, list[str]], capfd: pytest.CaptureFixture[str]
) -> None:
    listener, base, warnings = listening
    assert listener.server.server_address[0] == "127.0.0.1"
    result = waiting_for(listener, 20)
    assert httpx.get(f"{base}/favicon.ico").status_code == 404
    assert httpx.get(f"{base}/?code={CODE}&state={STATE}").status_code == 404
    assert httpx.get(f"{base}/callback?pad={'p' * 20000}").status_code == 414
    assert httpx.post(f"{base}/callback?code={CODE}&state={STATE}").status_code == 501
    stale = httpx.get(f"{base}/callback?code={CODE}&state=older")
    assert stale.status_code == 400
    assert "nothing was written" in stale.text
    assert warnings == ["a redirect with another state was refused (an older consent page?); still waiting"]
    assert not listener.receiver.done.is_set()  # a wrong state does not end the wait
    answered = httpx.get(f"{base}/callback?code={CODE}&state={STATE}")
    assert answered.status_code == 200
    assert "You can close this window" in answered.text
    assert answered.headers["referrer-policy"] == "no-referrer"
    assert CODE not in answered.text
    assert result() == Grant(STATE, code=CODE)
    out, err = capfd.readouterr()
    assert CODE not in out + err  # http.server's request log is off: it would print the request line


def test_a_matching_redirect_without_a_usable_grant_ends_the_wait_with_why(
    listening: tuple[Listener, str, list[str]],
) -> None:
    listener, base, _ = listening
    result = waiting_for(listener, 20)
    page = httpx.get(f"{base}/callback?error=%3Cscript%3E&state={STATE}")
    assert page.status_code == 400
    assert "<script>" not in page.text
    outcome = result()
    assert isinstance(outcome, PluginError)
    assert "not an OAuth error code" in str(outcome)


def test_the_listener_gives_up_after_its_timeout(listening: tuple[Listener, str, list[str]]) -> None:
    listener, _, _ = listening
    with pytest.raises(PluginError) as timed_out:
        listener.wait(0.2)
    assert timed_out.value.code is ExitCode.TIMEOUT
    assert "nothing was written" in str(timed_out.value)


def test_a_taken_port_is_a_clear_error(listening: tuple[Listener, str, list[str]]) -> None:
    listener, _, _ = listening
    with pytest.raises(PluginError, match=r"cannot listen on 127\.0\.0\.1:"):
        Listener(listener.where, "/callback", STATE, print)


# Judging the operator's answer, once the code left the Secret


def instance(**status: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "sales", "name": "crm"}, "status": status}


def stalled(message: str) -> list[dict[str, str]]:
    return [
        {"type": "Ready", "status": "False", "reason": "AuthorizationRequired", "message": message},
        {"type": "Stalled", "status": "True", "reason": "AuthorizationRequired", "message": message},
    ]


def test_a_stall_as_it_was_before_the_write_is_an_answer_only_once_it_settled() -> None:
    """The operator may remove the code before it writes its status: the old condition read in
    between must not be taken for its answer; a changed one is, at once; Ready always is."""
    now = [100.0]
    before = instance(conditions=stalled("Authorize with kubectl openconnectors authorize crm -n sales"))
    taken = authorize.Taken(None, "", Grant(STATE, code=CODE), authorize.signature(before), lambda: now[0])  # type: ignore[arg-type]
    taken.taken_at = now[0]
    assert taken.judge(before).state == "pending"
    assert "not Ready yet" in taken.note
    now[0] += authorize.SETTLE_SECONDS
    assert taken.judge(before).state == "failed"
    now[0] = 100.0
    refused = instance(conditions=stalled("The provider refused the code: authorize again"))
    assert taken.judge(refused) == Check(
        "failed", "AuthorizationRequired: The provider refused the code: authorize again"
    )
    ready = instance(
        instanceID=400123, conditions=[{"type": "Ready", "status": "True", "reason": "Available"}]
    )
    assert taken.judge(ready) == Check("handled", "Ready, instance 400123")
    working = instance(conditions=[{"type": "Ready", "status": "False", "reason": "Creating"}])
    assert taken.judge(working).state == "pending"  # not stalled: the operator is still at it


def test_the_values_written_remove_the_other_of_code_and_error() -> None:
    assert authorize.values(Grant(STATE, code="abc")) == {
        "code": "YWJj",
        "state": "c3QtNGYwYzlh",
        "error": None,
    }
    assert authorize.values(Grant(STATE, error="access_denied")) == {
        "error": "YWNjZXNzX2RlbmllZA==",
        "state": "c3QtNGYwYzlh",
        "code": None,
    }
    assert json.dumps(authorize._written("s", Grant(STATE, code=CODE), removed=True)).count(CODE) == 0
