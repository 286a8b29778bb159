"""``/v1/responses``: the Responses API, passed through to the Codex backend after fix-ups.

* ``POST /v1/responses``: any client's body (Codex CLI, ``openai`` SDK, plain-string ``input``) is
  fixed up (codex-protocol.md §6.3, :mod:`codexgw.translate.params`) and relayed as SSE
  (:class:`~codexgw.translate.passthrough.ResponsesPassthrough` through
  :func:`~codexgw.upstream.relay.relay`), or aggregated into one JSON Response when the client
  asked for ``stream: false``.
* ``previous_response_id`` and ``item_reference``: the backend stores nothing (``store: false``), so
  codexgw keeps every response the client did not mark ``store: false``
  (:mod:`codexgw.store.responses`) and expands the request (:mod:`codexgw.translate.history`): this
  module looks the ids up. The follow-up prefers the account that produced the previous response.
* ``POST /v1/responses/compact``: :mod:`codexgw.api.compact`.
* The WebSocket transport on the same path (§9): :mod:`codexgw.api.responses_ws`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from typing import Any

import trio

from codexgw.api.common import response_headers
from codexgw.api.hot import Call, JSONReply, StreamReply
from codexgw.policy.keys import ApiKey
from codexgw.store.responses import History, ResponseStore, StoredResponse
from codexgw.translate.aggregate import ResponseAggregator
from codexgw.translate.history import (
    body_for,
    item_references,
    previous_not_found,
    previous_response_id,
    resolve_references,
    with_history,
)
from codexgw.translate.params import prepare_responses_request
from codexgw.translate.passthrough import ResponsesPassthrough
from codexgw.upstream.collected import collect_answer
from codexgw.upstream.failover import open_stream
from codexgw.upstream.gateway import Gateway
from codexgw.upstream.keepalive import Opening, keep_alive_then_relay, open_or_wait
from codexgw.upstream.relay import Saver, collect, relay
from codexgw.upstream.stream import UpstreamStream

log = logging.getLogger("codexgw.responses")

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
    body = await call.json_body()
    tenant = tenant_of(call.exchange.key)
    previous_id, history, body = await expand_history(gw, body, tenant)
    prepared = prepare_responses_request(
        body, default_instructions=call.default_instructions, aliases=gw.settings.model_aliases
    )
    call.admit(str(body.get("model")), prepared.body)
    n_history = len(history.items) if history else 0
    keep = isinstance(body, dict) and body.get("store") is not False
    turn_input = prepared.body["input"][n_history:]
    store = await responses_store(gw) if keep else None

    def opener(exclude: frozenset[int] = frozenset()) -> Awaitable[UpstreamStream]:
        return open_stream(
            gw,
            prepared.body,
            call.headers,
            prefer_account_id=history.account_id if history else None,
            body_for=body_for(prepared.body, history.owners) if history else None,
            scope=call.exchange.scope,
            exclude=exclude,
        )

    def on_stream(stream: UpstreamStream) -> Saver | None:
        """Name the serving account and model; the saver that keeps this turn (``store`` not false)."""
        call.exchange.account = stream.account.name
        call.exchange.model = stream.model or str(prepared.body.get("model"))
        if store is None:
            return None
        return response_saver(gw, store, stream.account.id, previous_id, turn_input, tenant)

    if not prepared.stream:  # a drop mid-answer fails over: nothing reached the client yet
        stream, aggregator = await collect_answer(gw, opener, _aggregate)
        save = on_stream(stream)
        response = aggregator.final_response()
        if stream.model:  # the model that served it (codex-protocol.md §7), as the chat answers name it
            response["model"] = stream.model
        call.exchange.usage = response.get("usage")
        if save is not None:
            await save(str(response.get("id") or ""), list(response.get("output") or []))
        response["previous_response_id"] = previous_id
        response["store"] = keep
        return JSONReply(response, headers=response_headers(stream, prepared.dropped))
    opened = await open_or_wait(gw, opener, wait_s=gw.settings.keepalive_after_s)
    passthrough = ResponsesPassthrough(keep_items=keep, failure_id=f"resp_{uuid.uuid4().hex}")
    if isinstance(opened, Opening):  # no output yet after the keep-alive wait: commit (keepalive.py)
        call.exchange.model = str(prepared.body.get("model"))
        events = keep_alive_then_relay(
            gw, opened, passthrough, on_stream=on_stream, on_end=call.exchange.end_stream
        )
        return StreamReply(events, response_headers(None, prepared.dropped), opening=opened)
    stream = opened
    headers = response_headers(stream, prepared.dropped)
    save = on_stream(stream)
    events = relay(gw, stream, passthrough, on_end=call.exchange.end_stream, save=save)
    return StreamReply(events, headers, upstream=stream)


async def _aggregate(stream: UpstreamStream) -> ResponseAggregator:
    """Read a ``stream: false`` answer whole (:mod:`codexgw.translate.aggregate`)."""
    aggregator = ResponseAggregator()
    await collect(stream, aggregator.feed)
    return aggregator


# -- the store of kept responses ------------------------------------------------------------------


async def responses_store(gw: Gateway) -> ResponseStore:
    """The app's :class:`ResponseStore` (``<store dir>/responses.db``, opened by ``serve``)."""
    return gw.responses


def tenant_of(key: ApiKey | None) -> str | None:
    """Whose stored responses a request reaches: its key's :attr:`~codexgw.policy.keys.ApiKey.tenant`,
    ``None`` without a key (:mod:`codexgw.store.responses`, "Tenants")."""
    return key.tenant if key is not None else None


async def expand_history(
    gw: Gateway, body: Any, tenant: str | None
) -> tuple[str | None, History | None, Any]:
    """Expand ``previous_response_id`` and ``item_reference`` items (:mod:`codexgw.translate.history`)
    with what the store holds for ``tenant`` (:func:`tenant_of`; another tenant's ids are unknown here).

    Returns:
        ``(previous id or None, its history or None, the body to fix up)``. The history is also
        returned (possibly with no items) when references were resolved: its ``owners`` then cover
        the client's input too, so :func:`~codexgw.translate.history.body_for` sees resolved
        reasoning items.

    Raises:
        InvalidRequestError: the id is not a string, or no stored response has it (param
            ``previous_response_id``, code ``previous_response_not_found``); ``input`` has a wrong type;
            an item reference is bad or unknown (param ``input[i]``).
    """
    previous_id = previous_response_id(body)
    history: History | None = None
    if previous_id is not None:
        store = await responses_store(gw)
        history = await trio.to_thread.run_sync(
            lambda: store.expand(previous_id, tenant=tenant, now=gw.clock())
        )
        if history is None:
            raise previous_not_found(previous_id)
        body = with_history(body, history.items)
    refs = item_references(body, history)
    if not refs:
        return previous_id, history, body
    store = await responses_store(gw)
    found = await trio.to_thread.run_sync(
        lambda: store.find_items(refs.values(), tenant=tenant, now=gw.clock())
    )
    body, owners, account_id = resolve_references(body, history, refs, found)
    items = history.items if history else []
    return previous_id, History(items=items, owners=owners, account_id=account_id), body


def response_saver(
    gw: Gateway,
    store: ResponseStore,
    account_id: int,
    previous_id: str | None,
    turn_input: list[dict[str, Any]],
    tenant: str | None,
) -> Saver:
    """A coroutine function ``save(response_id, output_items)`` that stores this turn for ``tenant``
    (:func:`tenant_of`; never raises)."""

    async def save(response_id: str, output: list[dict[str, Any]]) -> None:
        if not response_id:
            return
        record = StoredResponse(response_id, previous_id, account_id, turn_input, output, tenant)
        try:
            with trio.CancelScope(shield=True):  # the client may hang up right after the last event
                await trio.to_thread.run_sync(lambda: store.put(record, now=gw.clock()))
        except Exception as exc:  # a full disk must not fail the response itself
            log.warning("could not store response %s: %s", response_id, exc)

    return save
