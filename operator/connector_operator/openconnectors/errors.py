"""The client's exception tree, modelled on httpx's so callers pick their granularity.

    OpenConnectorsError
    ├── InvalidCredentials        the account secrets cannot be sent at all; no request was made
    ├── NotSent                   the account's gate held the call back; retry after `retry_after`
    │   ├── CircuitOpen             the account's circuit breaker is open (budget.py)
    │   ├── BudgetExhausted         no room in the account's request budget within the wait bound
    │   └── NoSlot                  no call slot of the platform host within the wait bound
    ├── TransportError            the request may or may not have reached the platform
    │   ├── Timeout                 no complete answer within the call's overall deadline
    │   └── NetworkError
    └── APIError                  the platform answered with a non-2xx status, or with nothing usable
        ├── ClientError           4xx
        │   ├── BadRequest          400: the request (usually the configuration) was rejected
        │   ├── Unauthorized        401: the account secrets were rejected
        │   ├── Forbidden           403
        │   ├── NotFound            404
        │   └── RateLimited         429: `retry_after` seconds, when the platform said so
        └── ServerError           5xx
            └── MalformedResponse   any status: an answer the client will not use (not an instance,
                └── ResponseTooLarge  a runaway search, a body over the size cap)

Messages are already redacted (no secret value) and truncated, and a request id is kept only when
it looks like one: they are safe to put into a condition, an event or a log line as they are.
"""

from __future__ import annotations


class OpenConnectorsError(Exception):
    """Base of everything the client raises."""


class InvalidCredentials(OpenConnectorsError):
    """An account secret holds a character that an HTTP header cannot carry (a control character,
    a newline, anything outside printable ASCII). Terminal: only a change to the Secret helps.
    `key` names the Secret key (`userSecret` or `organizationSecret`); the value is never quoted."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class NotSent(OpenConnectorsError):
    """The account's gate (openconnectors/budget.py) held the call back: nothing was sent, so
    retrying is always safe. `retry_after`: seconds until the gate expects to let it through."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class CircuitOpen(NotSent):
    """Consecutive failures opened the account's circuit breaker; `retry_after` is the time until
    it lets a probe through."""


class BudgetExhausted(NotSent):
    """The account's request budget has no room for this call within the wait bound."""


class NoSlot(NotSent):
    """The platform host's call slots (slots.py) stayed taken for the call's whole wait bound: other
    calls to that host are slow. Nothing was sent."""


class TransportError(OpenConnectorsError):
    """No usable response: the outcome of a write is unknown."""


class Timeout(TransportError):
    pass


class NetworkError(TransportError):
    pass


class APIError(OpenConnectorsError):
    def __init__(self, status: int, message: str, request_id: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status = status
        self.message = message
        self.request_id = request_id


class ClientError(APIError):
    pass


class BadRequest(ClientError):
    pass


class Unauthorized(ClientError):
    pass


class Forbidden(ClientError):
    pass


class NotFound(ClientError):
    pass


class RateLimited(ClientError):
    def __init__(
        self, status: int, message: str, request_id: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(status, message, request_id)
        self.retry_after = retry_after


class ServerError(APIError):
    pass


class MalformedResponse(ServerError):
    """The platform answered, with its real `status` (2xx included), something the client will not
    use. Retried like a 5xx: a platform that misbehaves now may not later."""


class ResponseTooLarge(MalformedResponse):
    pass


_BY_STATUS: dict[int, type[ClientError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
}


def error_for(status: int, message: str, request_id: str | None, retry_after: float | None) -> APIError:
    if status == 429:
        return RateLimited(status, message, request_id, retry_after)
    if status >= 500:
        return ServerError(status, message, request_id)
    return _BY_STATUS.get(status, ClientError)(status, message, request_id)
