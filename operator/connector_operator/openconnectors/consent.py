"""OAuth's consent URL: what the operator asks the platform for, and what it accepts back.

`GET /elements/{key}/oauth/url` answers `{"oauthUrl": ...}`: the provider's page where a person
allows the app. The URL goes into `status.authorization.url`, which every reader of the object
sees, and a person's browser opens it, so the answer is checked before it is kept: a bounded
http(s) URL without whitespace or user information, carrying the `state` the operator sent, and
no secret the request carried, in any encoding (the query carries the client secret to the platform;
a platform that echoed it, or the account secrets, back would publish them in status), and a
`redirect_uri`, if any, that is the callback URL of the spec (the browser takes the code there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote_plus, urlsplit

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.answers import Answer

MAX_CONSENT_URL = 4096


@dataclass(frozen=True)
class Consent:
    connector_key: str
    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    callback_url: str
    scope: str | None
    state: str

    def query(self) -> dict[str, str | int]:
        query: dict[str, str | int] = {
            "apiKey": self.client_id,
            "apiSecret": self.client_secret,
            "callbackUrl": self.callback_url,
            "state": self.state,
        }
        return {**query, "scope": self.scope} if self.scope else query

    def url_of(self, answer: Answer) -> str:
        """The consent URL of the platform's answer, or MalformedResponse saying what is wrong."""
        payload = answer.json()
        url = payload.get("oauthUrl") if isinstance(payload, dict) else None
        if not isinstance(url, str) or not url:
            raise errors.MalformedResponse(answer.status, "the platform's consent answer has no oauthUrl")
        problem = self._problem(url)
        # Every secret the call carried, in every encoding the redactor knows (base64, escaped...):
        # the URL goes into status, which every reader of the object sees.
        if problem is None and any(answer.redactor.mask(u) != u for u in (url, unquote_plus(url))):
            problem = "contains a secret the request carried; not kept"
        if problem is not None:
            raise errors.MalformedResponse(answer.status, f"the platform's consent URL {problem}")
        return url

    def _problem(self, url: str) -> str | None:
        if len(url) > MAX_CONSENT_URL:
            return f"is longer than {MAX_CONSENT_URL} characters"
        if any(c.isspace() or not c.isprintable() for c in url):
            return "contains whitespace or control characters"
        try:
            parts = urlsplit(url)
        except ValueError:
            return "is not a URL"
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            return "is not an http(s) URL without user information"
        query = parse_qs(parts.query)
        if query.get("state") != [self.state]:
            return "does not carry the state the operator sent"
        if query.get("redirect_uri", [self.callback_url]) != [self.callback_url]:
            return "sends the browser elsewhere than spec.oauth.callbackURL (redirect_uri)"
        return None
