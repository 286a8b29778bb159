"""Classifying a non-2xx answer of the Codex backend (codex-protocol.md §8.3), sans-IO."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Failure:
    """How one non-2xx upstream answer should be handled (sans-IO result of :func:`classify`).

    Attributes:
        kind: ``"usage_limit"`` (429 usage_limit_reached / usage_not_included: cool the account down),
            ``"rate_limited"`` (other 429: cool down), ``"unauthorized"`` (401: refresh, retry once),
            ``"account"`` (403 and similar: this account cannot serve, try another),
            ``"server"`` (5xx: try another account), ``"client"`` (other 4xx: the request itself is
            wrong; relay to the client, no failover).
        status: the upstream HTTP status.
        body: the parsed JSON body, or ``None``.
        message: a short human description (no secrets).
    """

    kind: str
    status: int
    body: Any
    message: str


def parse_json_body(content: bytes) -> Any:
    """Parse an upstream body as JSON, or return ``None`` when it is not JSON."""
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def error_message(body: Any, content: bytes, status: int) -> str:
    """Extract a readable message from an upstream error body (``error.message``, ``detail``, text)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
        if isinstance(body.get("detail"), str):
            return body["detail"]
        if isinstance(body.get("message"), str):
            return body["message"]
    text = content[:200].decode("utf-8", "replace").strip()
    if "<html" in text.lower() or not text:
        return f"upstream answered HTTP {status}"
    return text


def classify(status: int, content: bytes) -> Failure:
    """Classify a non-2xx answer from ``/codex/responses`` (codex-protocol.md §8.3).

    Args:
        status: HTTP status (not 2xx).
        content: the raw response body.

    Returns:
        A :class:`Failure` telling the relay whether to refresh, cool down, fail over or relay.
    """
    body = parse_json_body(content)
    message = error_message(body, content, status)
    error = body.get("error") if isinstance(body, dict) else None
    error_type = error.get("type") if isinstance(error, dict) else None
    if status == 429:
        if error_type in ("usage_limit_reached", "usage_not_included"):
            return Failure("usage_limit", status, body, message)
        return Failure("rate_limited", status, body, message)
    if status == 401:
        return Failure("unauthorized", status, body, message)
    if status in (402, 403):
        return Failure("account", status, body, message)
    if status >= 500 or status in (408, 409):
        return Failure("server", status, body, message)
    return Failure("client", status, body, message)
