"""The one HTTP error boundary: what any failure of a request is answered with.

Both edges use it: the Quart app's error handlers (:mod:`codexgw.api.app`) and the plain-ASGI hot
routes (:meth:`codexgw.api.hot.HotRoutes._answer`). The rules:

* a :class:`~codexgw.errors.CodexgwError` is answered with its status, its headers and OpenAI's
  error shape ``{"error": {"message", "type", "param", "code"}}``; one that is not the client's
  fault (not a :class:`~codexgw.errors.ClientError`) is also logged as a warning;
* a 429 whose ``Retry-After`` is over two minutes also says ``x-should-retry: false``, so the
  openai SDKs give up at once instead of sleeping through their retries;
* an HTTP status the framework decided (no such route, method, body too large: 404/405/413) becomes
  the matching error (:func:`status_error`);
* any other exception is a bug: logged with its traceback, answered 500 "Internal server error"
  without one.
"""

from __future__ import annotations

import logging
from typing import Any

from codexgw.errors import (
    ClientError,
    CodexgwError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
)

__all__ = ["error_answer", "status_error"]

log = logging.getLogger("codexgw.api.app")

LONG_RETRY_AFTER_S = 120
"""A 429 asking to wait longer than this (s) tells the SDKs not to retry (``x-should-retry``)."""


def status_error(
    status: int, *, method: str, path: str, max_body_bytes: int, description: str | None = None
) -> CodexgwError:
    """The error for an HTTP ``status`` the framework decided (routing, body limit).

    404 names the route, 405 the method, 413 the limit (``max_body_bytes``); another 4xx carries
    ``description``; a 5xx says "Internal server error".
    """
    if status == 404:
        return NotFoundError(f"Unknown route: {method} {path}")
    if status == 405:
        return MethodNotAllowedError(f"Method {method} is not allowed on {path}")
    if status == 413:
        return PayloadTooLargeError(f"The request body exceeds {max_body_bytes} bytes")
    if status < 500:
        return ClientError(description or "Bad request", status=status)
    return CodexgwError("Internal server error", status=status)


def error_answer(exc: Exception, method: str, path: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """``(status, headers, body)`` of the answer to ``exc``, raised while serving ``method path``.

    Logs as the module docstring says (never a token: error messages carry none).
    """
    if not isinstance(exc, CodexgwError):
        log.error("unhandled error on %s %s", method, path, exc_info=exc)
        return 500, {}, CodexgwError("Internal server error").to_body()
    if not isinstance(exc, ClientError):
        log.warning("%s %s -> %d %s", method, path, exc.status, exc.message)
    headers = dict(exc.headers)
    if exc.status == 429 and int(headers.get("Retry-After", 0)) > LONG_RETRY_AFTER_S:
        headers["x-should-retry"] = "false"
    return exc.status, headers, exc.to_body()
