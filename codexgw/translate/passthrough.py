"""The relay's handler of a Responses stream: the upstream's events passed through as they are (sans-IO).

``POST /v1/responses`` relays the Codex backend's SSE bytes unchanged (codex-protocol.md §7), one
write per batch of events. :class:`ResponsesPassthrough` watches them on the way:

* it captures what the stream says about its response (output items, the final ``response`` with
  its ``id`` and ``usage``), so the route can keep it for a later ``previous_response_id``;
* it follows the stream's state (:mod:`codexgw.translate.stream_state`): the terminal event
  ``response.completed`` ends it ``DONE``; ``response.failed``, ``response.incomplete`` and
  ``error`` end it ``FAILED`` (the access log's ``outcome``);
* the batch holding the terminal event is held until the response is stored
  (:meth:`~ResponsesPassthrough.take_kept`): a follow-up naming it can then never arrive first;
* an upstream that fails after output began, or ends without a terminal event, gets a
  ``response.failed`` event as the stream's last (design §3); so does a stream whose accounts all
  failed after the keep-alive comments began (``COMMITTED``), with the error codexgw would have
  answered as HTTP (a usage limit keeps its code and ``resets_at``).

Unlike the chat stream, the passthrough reads on after the terminal event, to the upstream's end,
and relays whatever comes (``drains``).
"""

from __future__ import annotations

import json
from typing import Any

from codexgw.errors import CodexgwError, ServerShuttingDownError
from codexgw.translate.events import TERMINAL_EVENTS, Batch, event_json, event_type
from codexgw.translate.failures import TRUNCATED
from codexgw.translate.sse import SSEEvent, encode_comment, encode_event
from codexgw.translate.stream_state import StreamEvent, StreamState

__all__ = ["CAPTURED_EVENTS", "ResponsesPassthrough", "failed_data", "failed_event", "in_band_error"]

CAPTURED_EVENTS = frozenset({"response.output_item.done", "response.completed", "response.incomplete"})
"""The events whose data the passthrough reads: the output items and the final response."""

_ITEM_DONE = "response.output_item.done"
_BEFORE_OUTPUT = StreamState.BEFORE_OUTPUT


def failed_data(
    message: str, *, response_id: str, created_at: int, error: dict[str, Any] | None = None
) -> str:
    """The JSON of a ``response.failed`` event codexgw ends a stream with (design §3).

    Its ``response``: ``{"id", "object": "response", "created_at" (epoch s), "status": "failed",
    "error", "output": [], "usage": None}``; ``error`` is ``{"code": "server_error", "message"}``
    unless given (then it is used as it is: codex-rs reads ``code``, ``message``, ``type``,
    ``plan_type``, ``resets_at``, codex-protocol.md §7).
    """
    response = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "failed",
        "error": error if error is not None else {"code": "server_error", "message": message},
        "output": [],
        "usage": None,
    }
    return json.dumps({"type": "response.failed", "response": response})


def failed_event(
    message: str, *, response_id: str, created_at: int, error: dict[str, Any] | None = None
) -> bytes:
    """:func:`failed_data` as an SSE event, for an upstream failure after output began (design §3)
    or, with ``error``, every account failing after the keep-alive began."""
    data = failed_data(message, response_id=response_id, created_at=created_at, error=error)
    return encode_event(data, "response.failed")


def in_band_error(error: CodexgwError) -> dict[str, Any]:
    """The ``response.error`` for ``error`` when it ends a stream whose headers went out before any
    output (the keep-alive): what codexgw would have answered as HTTP, with ``code`` (its type when
    it has no code) and, for a usage limit, ``resets_at`` and ``plan_type`` (§7, §8.2)."""
    body = error.to_body()["error"]
    return {**body, "code": body.get("code") or body.get("type")}


class ResponsesPassthrough:
    """Pass one Responses stream through, capturing its response (see the module docstring).

    Args:
        keep_items: the response will be stored, so its output items are captured; without it only
            the final ``response`` is parsed (for the usage), and :meth:`take_kept` gives nothing.
        failure_id: the ``id`` of a ``response.failed`` this stream may end with.

    Attributes:
        state: the stream's :class:`~codexgw.translate.stream_state.StreamState`.
        drains: ``True``: the relay reads the upstream to its end, past the terminal event.
        items: the ``response.output_item.done`` items, in order (with ``keep_items``).
        response: the ``response`` of ``response.completed``/``response.incomplete`` once seen.
    """

    drains = True
    heartbeat = encode_comment("keep-alive")
    """What the relay writes after a silence: an SSE comment (design §3)."""

    def __init__(self, *, keep_items: bool, failure_id: str) -> None:
        self.state = _BEFORE_OUTPUT
        self.items: list[dict[str, Any]] = []
        self.response: dict[str, Any] | None = None
        self._keep = keep_items
        self._captured = CAPTURED_EVENTS if keep_items else CAPTURED_EVENTS - {_ITEM_DONE}
        self._failure_id = failure_id
        self._kept: tuple[str, list[dict[str, Any]]] | None = None

    def feed_batch(self, batch: Batch) -> bytes:
        """The bytes to write for one batch of upstream events: the batch's raw bytes, unchanged.

        When the batch holds the terminal event and the response is kept, :meth:`take_kept` then
        gives it: store it before writing these bytes.
        """
        self.observe(batch)
        return b"".join([raw for _event, raw in batch])

    def observe(self, batch: Batch) -> None:
        """Follow one batch of upstream events: the state, the captured response, what to keep."""
        if self.state.awaiting_output:
            self.state = self.state.after(StreamEvent.OUTPUT)
        captured = self._captured
        ending = False
        for event, _raw in batch:
            kind = event_type(event)
            if kind in captured:
                self._capture(kind, event)
            if kind in TERMINAL_EVENTS and not self.state.finished:
                ending = True
                self.state = self.state.after(
                    StreamEvent.END if kind == "response.completed" else StreamEvent.FAIL
                )
        if ending and self._keep and self.response is not None:
            self._kept = (str(self.response.get("id") or ""), self.output)

    def _capture(self, kind: str | None, sse_event: SSEEvent) -> None:
        event = event_json(sse_event)
        if event is None:
            return
        if kind == _ITEM_DONE and isinstance(event.get("item"), dict):
            self.items.append(event["item"])
        elif isinstance(event.get("response"), dict):
            self.response = event["response"]

    @property
    def output(self) -> list[dict[str, Any]]:
        """The output items: those streamed, else the final response's ``output``."""
        if self.items or self.response is None:
            return self.items
        output = self.response.get("output")
        return [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []

    def take_kept(self) -> tuple[str, list[dict[str, Any]]] | None:
        """``(response id, output items)`` to store before the last batch fed goes out, once; else
        ``None``. The id may be ``""`` when the upstream gave none (then nothing can be stored)."""
        kept, self._kept = self._kept, None
        return kept

    def end(self, now: float) -> bytes:
        """The upstream ended: ``b""`` after a terminal event, else a ``response.failed`` (the stream
        was cut short). ``now``: epoch s, the event's ``created_at``."""
        if self.state.finished:
            return b""
        self.state = self.state.after(StreamEvent.FAIL)
        return failed_event(TRUNCATED["message"], response_id=self._failure_id, created_at=int(now))

    def commit(self) -> None:
        """The keep-alive began before any output (:mod:`~codexgw.translate.stream_state`
        ``COMMITTED``): a failure now ends the stream in-band."""
        self.state = self.state.after(StreamEvent.COMMIT)

    def fail(self, error: CodexgwError, now: float) -> bytes:
        """The upstream broke (``error``): a ``response.failed`` carrying its message, the stream's
        last bytes. Before any output (committed: every account failed after the keep-alive began)
        it carries the whole error (:func:`in_band_error`), so the Codex CLI sees a usage limit as
        one. ``now``: epoch s, the event's ``created_at``."""
        return encode_event(self.fail_data(error, now), "response.failed")

    def fail_data(self, error: CodexgwError, now: float) -> str:
        """:meth:`fail`'s event as JSON (the WebSocket sends it as a text frame)."""
        # the drain's cut keeps its code (server_shutting_down) even after output began
        keep_code = self.state.awaiting_output or isinstance(error, ServerShuttingDownError)
        full = in_band_error(error) if keep_code else None
        self.state = self.state.after(StreamEvent.FAIL)
        return failed_data(error.message, response_id=self._failure_id, created_at=int(now), error=full)

    def client_closed(self) -> None:
        """The relay is torn down (the client left, or the stream is over): see the state table."""
        self.state = self.state.after(StreamEvent.CLIENT_CLOSE)

    def reported_usage(self) -> dict[str, Any] | None:
        """The final response's ``usage`` (``input_tokens``, ``output_tokens`` …), if seen."""
        return self.response.get("usage") if self.response is not None else None
