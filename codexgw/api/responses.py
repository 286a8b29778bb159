"""``/v1/responses``: the Responses API, passed through to the Codex backend after fix-ups.

* ``POST /v1/responses``: any client's body (Codex CLI, ``openai`` SDK, plain-string ``input``) is
  fixed up (codex-protocol.md §6.3, :mod:`codexgw.translate.params`) and relayed as SSE, or aggregated
  into one JSON Response when the client asked for ``stream: false``.
* ``previous_response_id``: the backend stores nothing (``store: false``), so codexgw keeps every
  response the client did not mark ``store: false`` (:mod:`codexgw.store.responses`) and expands the
  id into the full input. The follow-up prefers the account that produced the previous response (its
  encrypted reasoning is readable only there); on any other account the reasoning items of other
  accounts are left out, so a fallback still works.
* ``POST /v1/responses/compact``: relayed to ``{upstream}/codex/responses/compact`` (§6.1).
* A WebSocket upgrade on ``/v1/responses`` is answered HTTP 426, which makes Codex fall back to HTTP
  at once (§9).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import trio
from quart import Blueprint, Response, g, request

from codexgw.api.body import read_json_body
from codexgw.api.common import StreamLog, gateway, json_response, response_headers, upstream_closed
from codexgw.api.hot import Call, JSONReply, StreamReply
from codexgw.errors import CodexgwError, InvalidRequestError, UpstreamError
from codexgw.store.responses import History, ResponseStore, StoredResponse
from codexgw.translate.aggregate import ResponseAggregator
from codexgw.translate.events import TERMINAL_EVENTS, event_json, event_type
from codexgw.translate.params import is_item_reference, prepare_responses_request
from codexgw.translate.sse import SSEEvent, encode_event
from codexgw.upstream.failover import open_stream, post_compact
from codexgw.upstream.gateway import Gateway
from codexgw.upstream.heartbeat import HEARTBEAT, with_heartbeat
from codexgw.upstream.stream import UpstreamStream

bp = Blueprint("responses", __name__)
log = logging.getLogger("codexgw.responses")

COMPACT_FIELDS = ("model", "input", "instructions", "tools", "parallel_tool_calls", "reasoning", "text")
"""The body of ``/codex/responses/compact`` (codex-protocol.md §6.1)."""

CAPTURED_EVENTS = frozenset({"response.output_item.done", "response.completed", "response.incomplete"})


PATHS = ("/v1/responses", "/responses")


async def create_response(call: Call) -> JSONReply | StreamReply:
    """Create a model response (streamed when the body says ``stream: true``; codex-protocol.md §12.2).
    Served by :class:`codexgw.api.hot.HotRoutes`.

    Raises:
        InvalidRequestError: a malformed body; ``previous_response_not_found`` for an unknown,
            expired or ``store: false`` previous response.
        CodexgwError: whatever :func:`codexgw.upstream.failover.open_stream` raises before the first byte.
    """
    gw = call.gw
    body = call.json_body()
    previous_id, history, body = await _expand_previous(gw, body)
    prepared = prepare_responses_request(
        body, default_instructions=call.default_instructions, aliases=gw.settings.model_aliases
    )
    n_history = len(history.items) if history else 0
    keep = isinstance(body, dict) and body.get("store") is not False
    stream = await open_stream(
        gw,
        prepared.body,
        call.headers,
        prefer_account_id=history.account_id if history else None,
        body_for=_body_for(prepared.body, history) if history else None,
    )
    headers = response_headers(stream, prepared.dropped)
    model = stream.model or str(prepared.body.get("model"))
    call.account, call.model = stream.account.name, model
    turn_input = prepared.body["input"][n_history:]
    save = _saver(gw, await responses_store(gw), stream.account.id, previous_id, turn_input) if keep else None
    if prepared.stream:
        stream_log = StreamLog(
            call.method,
            call.path,
            call.started,
            stream.account.name,
            model,
            route=call.path,
            metrics=gw.metrics,
        )
        return StreamReply(_relay(gw, stream, save, stream_log), headers, upstream=stream)
    try:
        response = await _aggregate(stream)
    finally:
        await upstream_closed(stream)
    call.usage = response.get("usage")
    if save is not None:
        await save(str(response.get("id") or ""), list(response.get("output") or []))
    response["previous_response_id"] = previous_id
    response["store"] = keep
    return JSONReply(response, headers=headers)


@bp.post("/v1/responses/compact")
@bp.post("/responses/compact")
async def compact_response() -> Response:
    """Compact a conversation: ``{"output": [items…]}`` from ``/codex/responses/compact`` (§6.1).

    The body takes the same fix-ups as ``/v1/responses`` (ids stripped, ``system`` → ``developer``,
    string ``input``, ``previous_response_id`` expanded); only the fields of :data:`COMPACT_FIELDS`
    are sent. Failover and errors are those of the stream path.
    """
    gw = gateway()
    body = await read_json_body(gw.settings.max_body_bytes)
    _previous_id, _history, body = await _expand_previous(gw, body)
    prepared = prepare_responses_request(body, default_instructions="", aliases=gw.settings.model_aliases)
    compact = {k: prepared.body[k] for k in COMPACT_FIELDS if prepared.body.get(k) is not None}
    if not compact.get("instructions"):
        compact.pop("instructions", None)  # codex-rs omits it when empty (§6.1)
    result, account = await post_compact(gw, compact, request.headers)
    g.account, g.model = account.name, compact["model"]
    # The backend answers {"output": [...]}; the public API's CompactedResponse has a few more fields.
    result.setdefault("id", f"resp_{uuid.uuid4().hex}")
    result.setdefault("object", "response.compaction")
    result.setdefault("created_at", int(gw.clock()))
    headers = {"x-codexgw-dropped-params": ", ".join(prepared.dropped)} if prepared.dropped else None
    return json_response(result, headers=headers)


@bp.websocket("/v1/responses")
@bp.websocket("/responses")
async def responses_websocket() -> Response:
    """Refuse the WebSocket transport with HTTP 426 so Codex falls back to HTTP SSE (§9)."""
    error = {
        "message": "codexgw serves the Responses API over HTTP (SSE) only; use POST /v1/responses",
        "type": "invalid_request_error",
        "param": None,
        "code": "websocket_not_supported",
    }
    return json_response({"error": error}, status=426, headers={"upgrade": "HTTP/1.1"})


# -- previous_response_id -------------------------------------------------------------------------


async def responses_store(gw: Gateway) -> ResponseStore:
    """The app's :class:`ResponseStore` (``<store dir>/responses.db``, opened by ``serve``)."""
    return gw.responses


async def _expand_previous(gw: Gateway, body: Any) -> tuple[str | None, History | None, Any]:
    """Replace ``previous_response_id`` by the stored conversation prepended to ``input``, then
    resolve the ``item_reference`` items of the client's input (:func:`_resolve_references`).

    Returns:
        ``(previous id or None, its history or None, the body to fix up)``. The history is also
        returned (possibly with no items) when references were resolved: its ``owners`` then cover
        the client's input too, so :func:`_body_for` sees resolved reasoning items.

    Raises:
        InvalidRequestError: the id is not a string, or no stored response has it (param
            ``previous_response_id``, code ``previous_response_not_found``); ``input`` has a wrong type;
            an item reference is unknown (param ``input[i]``).
    """
    if not isinstance(body, dict) or body.get("previous_response_id") is None:
        return None, *await _resolve_references(gw, body, None)
    previous_id = body["previous_response_id"]
    if not isinstance(previous_id, str) or not previous_id:
        raise InvalidRequestError("'previous_response_id' must be a string", param="previous_response_id")
    store = await responses_store(gw)
    history = await trio.to_thread.run_sync(lambda: store.expand(previous_id, now=gw.clock()))
    if history is None:
        raise InvalidRequestError(
            f"Previous response with id '{previous_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    new_input = body.get("input")
    if isinstance(new_input, str):
        new_input = [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": new_input}]}
        ]
    elif new_input is None:
        new_input = []
    elif not isinstance(new_input, list):
        raise InvalidRequestError("'input' must be a string or an array", param="input")
    rest = {k: v for k, v in body.items() if k != "previous_response_id"}
    return previous_id, *await _resolve_references(
        gw, {**rest, "input": [*history.items, *new_input]}, history
    )


async def _resolve_references(gw: Gateway, body: Any, history: History | None) -> tuple[History | None, Any]:
    """Replace each ``item_reference`` of the client's input by the stored output item it names.

    The backend stores nothing, so it cannot resolve references; codexgw looks the ids up among the
    output items of the responses it kept (:meth:`ResponseStore.find_items`). Without a previous
    response, the follow-up prefers the account that produced the last resolved item.

    Raises:
        InvalidRequestError: a reference with a bad ``id``, or one that no kept response holds (param
            ``input[i]``, the index in the client's input).
    """
    items = body.get("input") if isinstance(body, dict) else None
    offset = len(history.items) if history else 0
    if not isinstance(items, list) or not any(is_item_reference(item) for item in items[offset:]):
        return history, body
    refs = {i: item.get("id") for i, item in enumerate(items) if i >= offset and is_item_reference(item)}
    for i, ref in refs.items():
        if not isinstance(ref, str) or not ref:
            raise InvalidRequestError(
                "an item reference needs a string 'id'", param=f"input[{i - offset}].id"
            )
    store = await responses_store(gw)
    found = await trio.to_thread.run_sync(lambda: store.find_items(refs.values(), now=gw.clock()))
    resolved, owners = list(items), list(history.owners if history else [])
    for i in range(offset, len(items)):
        owner = None
        if i in refs:
            if refs[i] not in found:
                raise InvalidRequestError(
                    f"Item with id '{refs[i]}' not found: codexgw keeps the output items of responses "
                    "not created with store: false, until they expire.",
                    param=f"input[{i - offset}]",
                )
            item, owner = found[refs[i]]
            resolved[i] = dict(item)
        owners.append(owner)
    account_id = history.account_id if history else next((o for o in reversed(owners) if o is not None), None)
    expanded = History(items=history.items if history else [], owners=owners, account_id=account_id)
    return expanded, {**body, "input": resolved}


def _body_for(body: dict[str, Any], history: History) -> Callable[[int], dict[str, Any]] | None:
    """The body for a given account: without reasoning items produced by *other* accounts.

    Encrypted reasoning can only be read by the account that produced it; items of the expanded
    history come first in ``body["input"]``, one for one with ``history.owners``.
    """
    items = body["input"]
    owned = [
        (i, owner)
        for i, owner in enumerate(history.owners)
        if owner is not None and i < len(items) and items[i].get("type") == "reasoning"
    ]
    if not owned:
        return None

    def body_for(account_id: int) -> dict[str, Any]:
        drop = {i for i, owner in owned if owner != account_id}
        if not drop:
            return body
        return {**body, "input": [item for i, item in enumerate(items) if i not in drop]}

    return body_for


Saver = Callable[[str, list[dict[str, Any]]], Any]


def _saver(
    gw: Gateway,
    store: ResponseStore,
    account_id: int,
    previous_id: str | None,
    turn_input: list[dict[str, Any]],
) -> Saver:
    """A coroutine function ``save(response_id, output_items)`` that stores this turn (never raises)."""

    async def save(response_id: str, output: list[dict[str, Any]]) -> None:
        if not response_id:
            return
        record = StoredResponse(response_id, previous_id, account_id, turn_input, output)
        try:
            with trio.CancelScope(shield=True):  # the client may hang up right after the last event
                await trio.to_thread.run_sync(lambda: store.put(record, now=gw.clock()))
        except Exception as exc:  # a full disk must not fail the response itself
            log.warning("could not store response %s: %s", response_id, exc)

    return save


class _Capture:
    """Collects what a stream says about its response: id, output items, usage (sans-IO).

    With ``keep_items=False`` (nothing will be stored) only the final ``response`` is parsed, for
    the usage in the access log; the output items are not.
    """

    def __init__(self, *, keep_items: bool = True) -> None:
        self._captured = CAPTURED_EVENTS if keep_items else CAPTURED_EVENTS - {"response.output_item.done"}
        self.items: list[dict[str, Any]] = []
        self.response: dict[str, Any] | None = None
        """The ``response`` of ``response.completed``/``response.incomplete`` once seen."""

    def feed(self, kind: str | None, sse_event: SSEEvent) -> None:
        if kind not in self._captured:
            return
        event = event_json(sse_event)
        if event is None:
            return
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
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


# -- streaming --------------------------------------------------------------------------------------


async def _relay(
    gw: Gateway, stream: UpstreamStream, save: Saver | None, stream_log: StreamLog
) -> AsyncIterator[bytes]:
    """Pass the upstream's events through as they come, one write per batch of events.

    Before the batch holding ``response.completed``/``incomplete`` goes out, the response is stored
    (when ``save``), so a follow-up naming it can never arrive first. An upstream failure after the
    first byte ends the stream with ``response.failed`` (design §3).
    """
    terminal = False
    capture = _Capture(keep_items=save is not None)
    stream_log.outcome = "client_closed"
    try:
        heartbeat = with_heartbeat(stream.batches(), nursery=gw.nursery, interval_s=gw.settings.heartbeat_s)
        async with aclosing(heartbeat) as batches:  # closed now when the client leaves, not at GC
            async for batch in batches:
                if batch is None:
                    yield HEARTBEAT
                    continue
                ending = False
                for event, _raw in batch:
                    kind = event_type(event)
                    capture.feed(kind, event)
                    if kind in TERMINAL_EVENTS and not terminal:
                        terminal = ending = True
                        stream_log.outcome = "completed" if kind == "response.completed" else "failed"
                if ending and save is not None and capture.response is not None:
                    await save(str(capture.response.get("id") or ""), capture.output)
                out = b"".join(raw for _event, raw in batch)
                del batch, event, _raw  # hold nothing while the upstream is silent
                yield out
                del out
        if not terminal:
            stream_log.outcome = "failed"
            yield _failed_event("the Codex backend closed the stream before response.completed")
    except CodexgwError as exc:
        stream_log.outcome = "failed"
        yield _failed_event(exc.message)
    finally:
        if capture.response is not None:
            stream_log.usage = capture.response.get("usage")
        stream_log.emit()
        await upstream_closed(stream)


def _failed_event(message: str) -> bytes:
    """A ``response.failed`` event for an upstream failure after output began (design §3)."""
    response = {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "failed",
        "error": {"code": "server_error", "message": message},
        "output": [],
        "usage": None,
    }
    return encode_event(json.dumps({"type": "response.failed", "response": response}), "response.failed")


async def _aggregate(stream: UpstreamStream) -> dict[str, Any]:
    """Read the whole stream and return the final Response object (``stream: false``).

    Raises:
        CodexgwError: the upstream failed or closed the stream early (see ``ResponseAggregator``).
    """
    aggregator = ResponseAggregator()
    async for batch in stream.batches():
        for event, _raw in batch:
            data = event_json(event)
            if data is not None:
                aggregator.feed(data)
    if not aggregator.done:
        raise UpstreamError("the Codex backend closed the stream before response.completed")
    return dict(aggregator.response)
