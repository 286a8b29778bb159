"""The Responses WebSocket protocol as the Codex CLI speaks it (codex-protocol.md §9), sans-IO.

Client messages are text frames ``{"type": "response.create", …the body of §6.3…}``; server
messages are the Responses events of §7, one JSON object per text frame. What the Codex CLI 0.171
does on a socket (observed, recorded in the issue-18 research):

* its first message is a warm-up ``response.create`` with ``"generate": false``; it waits for that
  response's ``response.completed`` before sending the real turn, as ``previous_response_id`` of the
  warm-up plus only the new input items; every tool follow-up the same way (only the
  ``function_call_output``);
* an ``error`` event is acted on only when it carries ``status`` (without it, Codex waits until its
  idle timeout): ``{"type": "error", "status": 429, "error": {…the HTTP error body…}}``;
* ``previous_response_not_found`` and ``websocket_connection_limit_reached`` make it open a new
  socket and resend the whole conversation; a usage limit fails the turn with its message;
* it never pings, and pings do not reset its idle timer; any text frame does.

This module parses client messages (:func:`parse_message`), renders the server's own messages
(errors, the warm-up's answer, the keep-alive frame) and holds :class:`ResponsesFrames`, the relay's
handler that passes the upstream's events on as text frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from codexgw.errors import CodexgwError
from codexgw.translate.events import Batch
from codexgw.translate.failures import TRUNCATED
from codexgw.translate.json_limits import JSONShapeError, check_json_shape
from codexgw.translate.passthrough import ResponsesPassthrough

__all__ = [
    "CONNECTION_LIMIT",
    "KEEPALIVE",
    "BadMessage",
    "Create",
    "ResponsesFrames",
    "error_event",
    "error_frame",
    "parse_message",
    "upstream_body",
    "warmup_events",
]

KEEPALIVE = json.dumps({"type": "keepalive"})
"""The frame written during upstream silence: a text event (any text frame resets Codex's idle
timer; pings do not). Codex ignores event types it does not know."""

WS_ONLY_METADATA = ("x-codex-ws-stream-request-start-ms",)
"""``client_metadata`` keys Codex sends only over the WebSocket (its HTTP body has none)."""


@dataclass(frozen=True)
class Create:
    """A ``response.create`` message: ``body`` is the request without ``type``; ``warmup`` when it
    says ``"generate": false`` (answer it without generating)."""

    body: dict[str, Any]
    warmup: bool


@dataclass(frozen=True)
class BadMessage:
    """A client message codexgw cannot take: answer :func:`error_event` ``(400, error)``; the socket
    stays usable."""

    error: dict[str, Any]


def _invalid(message: str, code: str) -> BadMessage:
    return BadMessage({"type": "invalid_request_error", "code": code, "message": message, "param": None})


def parse_message(text: str | None) -> Create | BadMessage:
    """Parse one client message (``None``: it was a binary frame).

    Returns:
        :class:`Create`, or :class:`BadMessage` for a binary frame, invalid JSON, a non-object, or a
        ``type`` other than ``response.create`` (codes ``binary_not_supported``, ``invalid_json``,
        ``unknown_message_type``).
    """
    if text is None:
        return _invalid("binary frames are not supported: send JSON text frames", "binary_not_supported")
    try:
        check_json_shape(text)
        message = json.loads(text)
    except JSONShapeError as exc:
        return _invalid(f"the message: {exc}", "json_too_deep" if exc.limit == "depth" else "json_too_large")
    except RecursionError:
        return _invalid("the message is nested too deep", "json_too_deep")
    except ValueError:
        return _invalid("the message is not valid JSON", "invalid_json")
    if not isinstance(message, dict):
        return _invalid("the message must be a JSON object", "invalid_json")
    kind = message.get("type")
    if kind != "response.create":
        return _invalid(
            f"unknown message type {kind!r}: the only client message is 'response.create'",
            "unknown_message_type",
        )
    body = {k: v for k, v in message.items() if k != "type"}
    warmup = body.pop("generate", None) is False
    return Create(body, warmup)


def upstream_body(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as the same request goes over HTTP: without the WebSocket-only ``client_metadata``
    keys (:data:`WS_ONLY_METADATA`); the rest unchanged."""
    metadata = body.get("client_metadata")
    if not isinstance(metadata, dict) or not any(k in metadata for k in WS_ONLY_METADATA):
        return body
    return {**body, "client_metadata": {k: v for k, v in metadata.items() if k not in WS_ONLY_METADATA}}


def error_event(status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    """``{"type": "error", "status", "error"[, "headers"]}``: an error as Codex maps it, like an HTTP
    answer of that status (§9; without ``status`` Codex would ignore it)."""
    event: dict[str, Any] = {"type": "error", "status": status, "error": error}
    if headers:
        event["headers"] = headers
    return json.dumps(event)


def error_frame(exc: CodexgwError) -> str:
    """:func:`error_event` for what codexgw would answer over HTTP: its status, its OpenAI error
    body (a usage limit keeps ``resets_at`` and ``plan_type``) and headers (``retry-after``)."""
    headers = {k.lower(): v for k, v in exc.headers.items()}
    return error_event(exc.status, exc.to_body()["error"], headers)


CONNECTION_LIMIT = error_event(
    400,
    {
        "type": "invalid_request_error",
        "code": "websocket_connection_limit_reached",
        "message": "Responses websocket connection limit reached (60 minutes). "
        "Create a new websocket connection to continue.",
        "param": None,
    },
)
"""The backend's answer to a ``response.create`` on a socket older than 60 minutes (§9); Codex then
opens a new socket."""


def warmup_events(response_id: str, model: str, created_at: int) -> list[str]:
    """The answer to a warm-up (``generate: false``): ``response.created`` then ``response.completed``
    with no output and zero usage (what Codex 0.171 waits for before its real turn)."""
    usage = {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }

    def response(status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "id": response_id,
            "object": "response",
            "created_at": created_at,
            "status": status,
            "model": model,
            "output": [],
            "usage": usage,
        }

    return [
        json.dumps(
            {"type": "response.created", "sequence_number": 0, "response": response("in_progress", None)}
        ),
        json.dumps(
            {"type": "response.completed", "sequence_number": 1, "response": response("completed", usage)}
        ),
    ]


class ResponsesFrames(ResponsesPassthrough):
    """The relay's handler for a WebSocket turn: the upstream's events as text frames (each event's
    JSON ``data``, unchanged), the state and the kept response as
    :class:`~codexgw.translate.passthrough.ResponsesPassthrough` follows them.

    Unlike the HTTP passthrough it stops reading at the terminal event (``drains`` false): the
    client's next ``response.create`` may follow at once. Its methods return lists of frames.
    """

    drains = False
    heartbeat: ClassVar[list[str]] = [KEEPALIVE]

    def feed_batch(self, batch: Batch) -> list[str]:  # type: ignore[override]
        """The frames for one batch: one per event (see :meth:`ResponsesPassthrough.feed_batch`)."""
        self.observe(batch)
        return [event.data for event, _raw in batch]

    def end(self, now: float) -> list[str]:  # type: ignore[override]
        """No frame after a terminal event; else a ``response.failed`` (the stream was cut short)."""
        if self.state.finished:
            return []
        return [self.fail_data(CodexgwError(TRUNCATED["message"]), now)]

    def fail(self, error: CodexgwError, now: float) -> list[str]:  # type: ignore[override]
        """A ``response.failed`` frame carrying ``error`` (see :meth:`ResponsesPassthrough.fail`)."""
        return [self.fail_data(error, now)]
