"""Classifying a non-2xx answer of the Codex backend (codex-protocol.md §8.3), sans-IO."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FailureKind(StrEnum):
    """What a non-2xx answer is about (codex-protocol.md §8.3); :mod:`codexgw.pool.failover` acts on it."""

    USAGE_LIMIT = "usage_limit"
    """429 ``usage_limit_reached`` / ``usage_not_included`` (§8.2): the account's plan limit."""
    RATE_LIMITED = "rate_limited"
    """Any other 429: a short rate limit."""
    UNAUTHORIZED = "unauthorized"
    """401: the access token was refused (refresh, retry once)."""
    ACCOUNT = "account"
    """402/403: this account cannot serve (another may)."""
    SERVER = "server"
    """5xx, 408, 409: the backend failed (another account may succeed)."""
    CLIENT = "client"
    """Any other 4xx: the request itself is wrong (relayed to the client, no failover)."""


@dataclass(frozen=True)
class Failure:
    """One non-2xx upstream answer, classified (sans-IO result of :func:`classify`).

    Attributes:
        kind: what the answer is about (:class:`FailureKind`).
        status: the upstream HTTP status.
        body: the parsed JSON body, or ``None``.
        message: a short human description (no secrets).
    """

    kind: FailureKind
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
        A :class:`Failure`; :func:`codexgw.pool.failover.decide` turns it into what to do.
    """
    body = parse_json_body(content)
    message = error_message(body, content, status)
    error = body.get("error") if isinstance(body, dict) else None
    error_type = error.get("type") if isinstance(error, dict) else None
    if status == 429:
        if error_type in ("usage_limit_reached", "usage_not_included"):
            return Failure(FailureKind.USAGE_LIMIT, status, body, message)
        return Failure(FailureKind.RATE_LIMITED, status, body, message)
    if status == 401:
        return Failure(FailureKind.UNAUTHORIZED, status, body, message)
    if status in (402, 403):
        return Failure(FailureKind.ACCOUNT, status, body, message)
    if status >= 500 or status in (408, 409):
        return Failure(FailureKind.SERVER, status, body, message)
    return Failure(FailureKind.CLIENT, status, body, message)
