"""Every error codexgw reports, each carrying its HTTP status and OpenAI error ``type``/``code``.

The tree::

    CodexgwError                      500 server_error
    ├── ClientError                   4xx, the caller's mistake
    │   ├── InvalidRequestError       400 invalid_request_error (names the ``param``)
    │   ├── AuthenticationError       401 invalid_request_error / invalid_api_key
    │   ├── UnauthenticatedError      401 unauthenticated (the admin API: no session or admin key)
    │   ├── ForbiddenError            403 forbidden (``model_not_allowed``, ``csrf_failed`` …)
    │   ├── NotFoundError             404 invalid_request_error
    │   ├── MethodNotAllowedError     405 invalid_request_error
    │   ├── PayloadTooLargeError      413 invalid_request_error
    │   ├── ConflictError             409 conflict (a duplicate name)
    │   ├── UnsupportedMediaTypeError 415 invalid_request_error
    │   └── RateLimitError            429 rate_limit_exceeded (a key's limit; ``type`` requests/tokens)
    ├── UpstreamError                 502 upstream_error: the Codex backend misbehaved
    │   ├── UpstreamStatusError       the backend's own non-2xx answer, relayed with its status
    │   ├── UsageLimitError           429 usage_limit_reached (``resets_at``, ``plan_type``)
    │   └── UpstreamConnectionError   502 (connect/read failure, timeout, malformed stream)
    ├── PoolExhaustedError            503 (every account cooling down; ``retry_after_s``)
    ├── DrainingError                 503 draining (the server is shutting down; ``Retry-After``)
    └── ServerShuttingDownError       503 server_shutting_down (the drain's grace ran out mid-request)

``app.py`` has a single handler that renders any of these with :meth:`CodexgwError.to_body`, so a
client always sees ``{"error": {"message", "type", "param", "code"}}`` (OpenAI's error shape) and
never a traceback. Error messages never contain tokens.
"""

from __future__ import annotations

import math
from typing import Any


class CodexgwError(Exception):
    """Base of all codexgw errors.

    Attributes:
        message: human-readable text (never contains secrets).
        status: HTTP status code to answer with.
        type: OpenAI error ``type`` string.
        param: the request field at fault, or ``None``.
        code: OpenAI error ``code`` string, or ``None``.
        headers: extra response headers (e.g. ``Retry-After``).
    """

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers or {})

    def to_body(self) -> dict[str, Any]:
        """Return the OpenAI error body ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class ClientError(CodexgwError):
    """The request is wrong; retrying it unchanged cannot help."""

    status = 400
    type = "invalid_request_error"


class InvalidRequestError(ClientError):
    """400: a malformed body or a bad field; ``param`` names the field (e.g. ``"messages[2].role"``)."""


class AuthenticationError(ClientError):
    """401: missing or wrong gateway API key."""

    status = 401
    code = "invalid_api_key"


class UnauthenticatedError(ClientError):
    """401 on the admin API: no valid session cookie and no admin API key (teams contract §4)."""

    status = 401
    code = "unauthenticated"


class ForbiddenError(ClientError):
    """403: the caller may not do this (a member's request about another member's thing, a model
    outside the key's allowlist: code ``model_not_allowed``, a missing CSRF token: ``csrf_failed``)."""

    status = 403
    code = "forbidden"


class NotFoundError(ClientError):
    """404: unknown route or resource."""

    status = 404
    code = "not_found"


class MethodNotAllowedError(ClientError):
    """405: the route exists but not for this method."""

    status = 405
    code = "method_not_allowed"


class PayloadTooLargeError(ClientError):
    """413: the request body exceeds the configured maximum."""

    status = 413
    code = "payload_too_large"


class ConflictError(ClientError):
    """409: the name is taken (a user, key or account of that name exists)."""

    status = 409
    code = "conflict"


class RateLimitError(ClientError):
    """429 ``rate_limit_exceeded``: one of the key's limits refused the request (teams contract §2).

    OpenAI's shape: ``type`` is ``requests`` or ``tokens`` (which limit), ``param`` null,
    ``Retry-After`` the seconds until the request could pass.

    Attributes:
        retry_after_s: seconds until the limit lets a request through (sent as ``Retry-After``).
    """

    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, kind: str, retry_after_s: float, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.type = kind
        self.retry_after_s = retry_after_s
        self.headers.setdefault("Retry-After", str(max(1, math.ceil(retry_after_s))))


class UnsupportedMediaTypeError(ClientError):
    """415: a ``Content-Encoding`` or ``Content-Type`` codexgw cannot decode."""

    status = 415
    code = "unsupported_media_type"


class UpstreamError(CodexgwError):
    """The Codex backend failed in a way the client should see as a gateway error (502 by default)."""

    status = 502
    type = "upstream_error"


class UpstreamStatusError(UpstreamError):
    """A non-2xx answer from the backend that is relayed to the client.

    ``body`` is the backend's parsed JSON error body when it had one; :meth:`to_body` keeps the
    backend's ``error`` object (e.g. a 400 ``invalid_request_error`` about a bad input item) so the
    client sees the real reason.
    """

    def __init__(self, message: str, *, status: int, body: dict[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(message, status=status, **kw)
        self.body = body
        error = (body or {}).get("error")
        if isinstance(error, dict):
            self.type = str(
                error.get("type") or ("invalid_request_error" if status < 500 else "upstream_error")
            )
            self.code = error.get("code") if isinstance(error.get("code"), str) else self.code
            self.param = error.get("param") if isinstance(error.get("param"), str) else self.param
        elif status < 500:
            self.type = "invalid_request_error"


class UsageLimitError(UpstreamError):
    """429 ``usage_limit_reached``: the account (or every account) hit its plan's usage limit.

    Shape per shared codex-protocol.md §8.2; reported before any stream starts (§12.1) so the Codex
    CLI shows the reset time instead of retrying.

    Attributes:
        resets_at: epoch seconds when the limit resets, or ``None`` when unknown.
        plan_type: the account plan (``"plus"``, ``"pro"`` …) or ``None``.
    """

    status = 429
    type = "usage_limit_reached"
    code = "usage_limit_reached"

    def __init__(
        self,
        message: str = "The usage limit has been reached",
        *,
        resets_at: float | None = None,
        plan_type: str | None = None,
        now: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.resets_at = resets_at
        self.plan_type = plan_type
        if resets_at is not None and now is not None:
            self.headers.setdefault("Retry-After", str(max(1, math.ceil(resets_at - now))))

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        error = body["error"]
        if self.resets_at is not None:
            error["resets_at"] = math.ceil(self.resets_at)  # as Retry-After rounds
        if self.plan_type is not None:
            error["plan_type"] = self.plan_type
        return body


class UpstreamConnectionError(UpstreamError):
    """502: could not reach the backend, it timed out, or it sent a malformed stream.

    Attributes:
        cause: the transport failure's class name (``ConnectError``, ``ReadTimeout`` …) when the
            error was mapped from the HTTP library (``client/errors.py``), else ``None``.
        connect_failed: no connection was made at all (nothing listens, DNS, connect timeout).
    """

    code = "upstream_unavailable"

    def __init__(
        self, message: str, *, cause: str | None = None, connect_failed: bool = False, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.cause = cause
        self.connect_failed = connect_failed


class PoolExhaustedError(CodexgwError):
    """503: no account can take the request now.

    Attributes:
        retry_after_s: seconds until the earliest account becomes available (sent as ``Retry-After``).
    """

    status = 503
    type = "service_unavailable"
    code = "no_account_available"

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s
        if retry_after_s is not None:
            self.headers.setdefault("Retry-After", str(max(1, math.ceil(retry_after_s))))


class DrainingError(CodexgwError):
    """503 ``draining``: the server is shutting down and takes no new request (issue 16).

    Attributes:
        retry_after_s: seconds until the drain ends (sent as ``Retry-After``, at least 1).
    """

    status = 503
    type = "service_unavailable"
    code = "draining"

    def __init__(self, message: str, *, retry_after_s: float, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s
        self.headers.setdefault("Retry-After", str(max(1, math.ceil(retry_after_s))))


class ServerShuttingDownError(CodexgwError):
    """503 ``server_shutting_down``: the drain's grace ran out while this request was still open.

    On a stream it is told in-band (chat ``data: {"error": …}``, Responses ``response.failed``
    carrying this code); before any byte went out, as an HTTP 503.
    """

    status = 503
    type = "server_error"
    code = "server_shutting_down"
