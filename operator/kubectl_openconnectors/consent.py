"""`authorize`'s side of the OAuth redirect: the consent URL it opens, the provider's redirect it
receives (on a loopback port, or pasted), and the grant it takes from that redirect.

The redirect carries a one-time `code` (or, for a denied consent, an `error`) and the `state` of
the consent URL. A grant is taken only from a redirect whose state is the consent URL's: another
one is a stale consent page, or a page that did not come from this consent, and writing its code
would only have the operator refuse it. The code never leaves this module but in the Grant: no
message, page or log line here quotes it (the HTTP server's request log is switched off: it
writes the request line, code included, to stderr).
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import AF_INET, AF_INET6
from typing import IO, Any, cast
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit, urlunsplit

from kubectl_openconnectors.errors import ExitCode, PluginError

CODE_LIMIT = 4096  # characters of a code: providers' codes are far shorter; a Secret stays small
URL_LIMIT = 16384  # characters of a consent URL, a pasted line or a request path
ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # RFC 6749's error codes (access_denied, ...)
VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")  # a URL as it can be printed and opened as it is
CODE_CHARS = re.compile(r"[\x20-\x7e]+")  # RFC 6749's VSCHAR
POLL_SECONDS = 0.05  # how soon the server sees that the wait ended (its shutdown waits that long)
REQUEST_SECONDS = 10.0  # a connection that sends nothing (a browser's preconnect) is closed after

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Consent:
    """The provider's consent URL (status.authorization.url), its state and where it redirects."""

    url: str
    state: str
    callback: str


@dataclass(frozen=True)
class Grant:
    """What the redirect gave: a code, or the provider's error for a denied consent. repr leaves
    the code out, so that no traceback or debug print shows it."""

    state: str
    code: str | None = None
    error: str | None = None

    def __repr__(self) -> str:
        return f"Grant(error={self.error!r})" if self.error else "Grant(code=<not shown>)"


class StateMismatch(PluginError):
    """A redirect whose state is not the consent URL's: nothing of it is used."""


def consent(url: str, fallback_callback: str) -> Consent:
    """The consent URL as the operator wrote it, or a refusal: http(s), printable as it is (no
    space, no control character: it is printed and handed to a browser unchanged), with one
    `state`. Its `redirect_uri` is the callback; without one, spec.oauth.callbackURL is."""
    parts = urlsplit(url) if len(url) <= URL_LIMIT and VISIBLE_ASCII.fullmatch(url) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise PluginError(
            "status.authorization.url is not an http(s) URL of visible ASCII characters: it cannot be "
            "opened (was it written by the operator?)",
            ExitCode.USAGE,
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    states = query.get("state") or []
    if len(states) != 1 or not states[0]:
        raise PluginError(
            "status.authorization.url has no single `state`: the redirect could not be checked against it",
            ExitCode.USAGE,
        )
    callback = (query.get("redirect_uri") or [fallback_callback])[0]
    if callback != fallback_callback:
        raise PluginError(
            "status.authorization.url sends the browser elsewhere than spec.oauth.callbackURL "
            "(its redirect_uri): the code would go there, so it is not opened",
            ExitCode.USAGE,
        )
    return _with_session(parts, query, states[0], callback)


def new_session() -> str:
    return secrets.token_urlsafe(24)


def _with_session(parts: SplitResult, query: dict[str, list[str]], state: str, callback: str) -> Consent:
    """The consent URL with a state of this run's own: the operator's, a dot and a random session.
    The operator's state is in status, which anyone who may read the object sees: with it alone, a
    reader could send a code of her own consent (her provider account) to this listener. The
    operator accepts both forms (domain/grants.py `state_matches`)."""
    session = f"{state}.{new_session()}"
    pairs = [(key, session if key == "state" else value) for key, values in query.items() for value in values]
    return Consent(urlunsplit(parts._replace(query=urlencode(pairs))), session, callback)


def grant_from(query: str, state: str) -> Grant:
    """The grant of a redirect's query, if its state is `state` (StateMismatch otherwise): one
    `code` of at most CODE_LIMIT visible characters, or one `error` code."""
    values = parse_qs(query, keep_blank_values=True)
    got = values.get("state") or []
    if len(got) != 1 or not hmac.compare_digest(got[0].encode(), state.encode()):
        raise StateMismatch(
            "the redirect's state is not the one of the consent URL: nothing was written. Use the "
            "consent page this command opened (an older page, or one opened elsewhere, has another state)",
            ExitCode.USAGE,
        )
    codes, errors = values.get("code") or [], values.get("error") or []
    if len(codes) + len(errors) != 1:
        raise PluginError(
            "the redirect must carry one `code` (or one `error`, for a denied consent): nothing was written",
            ExitCode.USAGE,
        )
    if errors:
        if not ERROR_CODE.fullmatch(errors[0]):
            raise PluginError(
                "the redirect's `error` is not an OAuth error code (at most 64 of A-Z a-z 0-9 _ . -): "
                "nothing was written",
                ExitCode.USAGE,
            )
        return Grant(state, error=errors[0])
    if len(codes[0]) > CODE_LIMIT or not CODE_CHARS.fullmatch(codes[0]):
        raise PluginError(
            f"the redirect's code is not 1 to {CODE_LIMIT} visible ASCII characters: nothing was written",
            ExitCode.USAGE,
        )
    return Grant(state, code=codes[0])


# Where the redirect is received


@dataclass(frozen=True)
class Address:
    host: str  # an IP address, loopback
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def address(value: str) -> Address:
    """`--listen HOST:PORT`: a loopback IP address only, so that the code the redirect carries
    never reaches a network interface."""
    try:
        parts = urlsplit(f"//{value}")
        extra = parts.path or parts.query or parts.fragment or parts.username
        host, port = parts.hostname or "", None if extra else parts.port
    except ValueError:
        host, port = "", None
    if not port:
        raise PluginError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8765", ExitCode.USAGE)
    ip = _loopback(host)
    if ip is None:
        raise PluginError(
            f"--listen {value!r}: only a loopback IP address (127.0.0.1 or ::1, not localhost: RFC 8252 "
            "8.3) is allowed, so that the code never reaches the network or another local user",
            ExitCode.USAGE,
        )
    return Address(ip, port)


def _loopback(host: str) -> str | None:
    """The loopback IP `host` is, or None. Not `localhost` (RFC 8252 section 8.3): a browser may
    resolve it to ::1 while this listens on 127.0.0.1, and another local user listening on the
    other address would get the code."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(ip) if ip.is_loopback else None


def callback_address(callback: str) -> Address | None:
    """The loopback address an http callback URL names (a default port of 80), else None."""
    try:
        parts = urlsplit(callback)
        port = parts.port or 80
    except ValueError:
        return None
    host = _loopback(parts.hostname or "") if parts.scheme == "http" else None
    return Address(host, port) if host else None


def callback_path(callback: str) -> str:
    return urlsplit(callback).path or "/"


# --paste


def paste(stream: IO[str], state: str) -> Grant:
    """One line from `stream`: the whole URL the browser was redirected to."""
    line = stream.readline(URL_LIMIT + 1)
    if len(line) > URL_LIMIT:
        raise PluginError(
            f"the pasted line is over {URL_LIMIT} characters: nothing was written", ExitCode.USAGE
        )
    try:
        parts = urlsplit(line.strip())
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.query:
        raise PluginError(
            "expected the whole address the browser was redirected to (http(s)://...?code=...&state=...) "
            "on one line: nothing was written",
            ExitCode.USAGE,
        )
    return grant_from(parts.query, state)


# --listen


PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>"
    "<body><h1>{title}</h1><p>{text}</p></body></html>"
)


class _Handler(BaseHTTPRequestHandler):
    server_version = "kubectl-openconnectors"
    sys_version = ""
    timeout = REQUEST_SECONDS

    def do_GET(self) -> None:
        receiver = cast(_Server, self.server).receiver
        if len(self.path) > URL_LIMIT:
            self._page(414, "Request too long", "This address is too long to be a redirect.")
            return
        parts = urlsplit(self.path)
        if parts.path != receiver.path:
            self._page(404, "Not found", "This is not the callback address.")
            return
        receiver.handle(parts.query, self._page)

    def _page(self, status: int, title: str, text: str) -> None:
        body = PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the page's address holds the code
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default writes the request line, the code with it, to stderr."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a connection left open by a browser does not hold the command
    receiver: _Receiver


class _Receiver:
    """Ends at the first redirect to `path` whose state matches; others are answered and warned of."""

    def __init__(self, path: str, state: str, warn: Warn) -> None:
        self.path, self.state, self.warn = path, state, warn
        self.done = threading.Event()
        self.result: Grant | PluginError | None = None
        self.lock = threading.Lock()

    def handle(self, query: str, page: Callable[[int, str, str], None]) -> None:
        try:
            grant = grant_from(query, self.state)
        except StateMismatch as error:
            self.warn("a redirect with another state was refused (an older consent page?); still waiting")
            page(400, "Not this consent", str(error))
            return
        except PluginError as error:
            page(400, "Authorization not received", str(error))
            self._finish(error)
            return
        if grant.error:
            page(200, "Consent denied", f"The provider said {grant.error}. You can close this window.")
        else:
            page(200, "Authorization received", "You can close this window and go back to the terminal.")
        self._finish(grant)

    def _finish(self, result: Grant | PluginError) -> None:
        with self.lock:  # the first one wins; a second request in flight changes nothing
            if self.result is None:
                self.result = result
                self.done.set()


class Listener:
    """An HTTP server on a loopback address, started before the browser opens (so that no
    redirect can come first) and stopped when the wait ends."""

    def __init__(self, where: Address, path: str, state: str, warn: Warn) -> None:
        self.where, self.receiver = where, _Receiver(path, state, warn)
        server_class = type(
            "Server", (_Server,), {"address_family": AF_INET6 if ":" in where.host else AF_INET}
        )
        try:
            self.server: _Server = server_class((where.host, where.port), _Handler)
        except OSError as error:
            raise PluginError(f"cannot listen on {where}: {error.strerror}", ExitCode.USAGE) from None
        self.server.receiver = self.receiver
        self.thread = threading.Thread(target=self._serve, name="redirect", daemon=True)

    def _serve(self) -> None:
        self.server.serve_forever(poll_interval=POLL_SECONDS)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, timeout: float) -> Grant:
        if not self.receiver.done.wait(timeout):
            raise PluginError(
                f"no redirect reached http://{self.where}{self.receiver.path} within {timeout:g}s: "
                "nothing was written",
                ExitCode.TIMEOUT,
            )
        result = self.receiver.result
        if isinstance(result, PluginError):
            raise result
        assert result is not None
        return result
