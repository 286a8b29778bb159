"""Upstream in-stream failures (``response.failed``, ``error`` events) as OpenAI errors.

Sources: codex-protocol.md §7 ("In-stream errors", the ``response.failed`` example) and §8.3 (the
``response.failed`` codes). :func:`openai_error` gives the error object a chat stream ends with
(``data: {"error": …}``); :func:`failure_exception` gives the exception a non-streamed request answers
with (so ``context_length_exceeded`` is a 400, a usage limit a 429, …).
"""

from __future__ import annotations

from typing import Any, TypedDict

from codexgw.errors import CodexgwError, UpstreamError, UpstreamStatusError, UsageLimitError

__all__ = ["TRUNCATED", "OpenAIError", "failure_exception", "openai_error"]


class OpenAIError(TypedDict, total=False):
    """``{"message", "type", "code", "param"}`` (plus ``resets_at``/``plan_type`` for usage limits)."""

    message: str
    type: str
    code: str | None
    param: str | None
    resets_at: int
    plan_type: str


_STATUS_BY_CODE = {
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
    "cyber_policy": 400,
    "invalid_request_error": 400,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "usage_limit_reached": 429,
    "usage_not_included": 429,
    "server_is_overloaded": 503,
    "slow_down": 503,
}
_TYPE_BY_STATUS = {400: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}
_USAGE_LIMIT = ("usage_limit_reached", "usage_not_included")

TRUNCATED: OpenAIError = {
    "message": "the Codex backend closed the stream before response.completed",
    "type": "upstream_error",
    "code": "upstream_unavailable",
    "param": None,
}
"""The error for a stream that ended without a terminal event."""


def openai_error(err: object) -> OpenAIError:
    """The OpenAI-shaped error object for an upstream error dict (any shape; missing fields filled).

    ``type`` is the upstream's when it sent one, else derived from ``code`` (``invalid_request_error``
    for 400-class codes, ``rate_limit_error`` for quota codes, else ``server_error``).
    """
    err = err if isinstance(err, dict) else {}
    code = err.get("code") if isinstance(err.get("code"), str) else None
    kind = err.get("type") if isinstance(err.get("type"), str) else None
    status = _STATUS_BY_CODE.get(code or kind or "")
    out: OpenAIError = {
        "message": str(
            err.get("message") or f"The Codex backend failed the response ({code or kind or 'unknown'})"
        ),
        "type": kind or _TYPE_BY_STATUS.get(status or 0, "server_error"),
        "code": code,
        "param": err.get("param") if isinstance(err.get("param"), str) else None,
    }
    if isinstance(err.get("resets_at"), int | float):
        out["resets_at"] = int(err["resets_at"])
    if isinstance(err.get("plan_type"), str):
        out["plan_type"] = err["plan_type"]
    return out


def failure_exception(error: OpenAIError) -> CodexgwError:
    """The exception a non-streamed request answers with for ``error`` (from :func:`openai_error`).

    Usage limits become :class:`UsageLimitError` (429 with ``resets_at``); other known codes an
    :class:`UpstreamStatusError` with their status (400, 429, 503) carrying the error object; the rest
    a 502 :class:`UpstreamError`.
    """
    code = error.get("code") or error.get("type") or ""
    message = error.get("message") or "The Codex backend failed the response"
    if code in _USAGE_LIMIT:
        return UsageLimitError(message, resets_at=error.get("resets_at"), plan_type=error.get("plan_type"))
    status = _STATUS_BY_CODE.get(code)
    if status is not None:
        return UpstreamStatusError(message, status=status, body={"error": dict(error)})
    return UpstreamError(message, code=error.get("code") or "upstream_error")


def response_error(event: dict[str, Any]) -> OpenAIError:
    """The error carried by a ``response.failed`` (``response.error``) or an ``error`` event
    (``{"type": "error", "code", "message", "param"}``, or codex's ``{"type": "error", "error": {…}}``, §9)."""
    if event.get("type") == "response.failed":
        response = event.get("response")
        return openai_error(response.get("error") if isinstance(response, dict) else None)
    inner = event.get("error")
    if isinstance(inner, dict):
        return openai_error(inner)
    # the Responses API ``error`` event: {"type": "error", "code", "message", "param"}; its "type" is the event's
    return openai_error({k: v for k, v in event.items() if k != "type"})
