"""The client's exception tree, modelled on httpx's so callers pick their granularity.

    OpenConnectorsError
    ├── TransportError            the request may or may not have reached the platform
    │   ├── Timeout
    │   └── NetworkError
    └── APIError                  the platform answered with a non-2xx status
        ├── ClientError           4xx
        │   ├── BadRequest          400: the request (usually the configuration) was rejected
        │   ├── Unauthorized        401: the account secrets were rejected
        │   ├── Forbidden           403
        │   ├── NotFound            404
        │   └── RateLimited         429: `retry_after` seconds, when the platform said so
        └── ServerError           5xx

Messages are already redacted (no secret value) and truncated: they are safe to put into a
condition or an event as they are.
"""

from __future__ import annotations


class OpenConnectorsError(Exception):
    """Base of everything the client raises."""


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
