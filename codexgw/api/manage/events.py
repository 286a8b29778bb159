"""``GET /api/events``: live events as SSE (teams contract §4), from :class:`codexgw.upstream.events.EventHub`.

``event: account|pool|login|request|key`` with ``data:`` the JSON object; a comment heartbeat
(``: keep-alive``) after :data:`HEARTBEAT_S` of silence. A member receives only events about their
own accounts, keys and requests. Nothing is computed for events while no client is subscribed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import trio
from quart import Blueprint, Response

from codexgw.api.common import SSE_HEADERS, current_exchange, gateway
from codexgw.api.manage.auth import principal

bp = Blueprint("manage_events", __name__)

HEARTBEAT_S = 15.0


@bp.get("/api/events")
async def events() -> Response:
    """The event stream of the caller (see the module docstring)."""
    gw, who = gateway(), await principal()
    hub = gw.teams.events
    subscription = hub.subscribe(who)
    exchange = current_exchange()

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            while True:
                with trio.move_on_after(HEARTBEAT_S):
                    event = await subscription.receive.receive()
                    yield f"event: {event.kind}\ndata: {json.dumps(event.data, separators=(',', ':'))}\n\n".encode()
                    continue
                yield b": keep-alive\n\n"
        finally:
            hub.unsubscribe(subscription)
            exchange.finish(200)

    headers = {k: v for k, v in SSE_HEADERS.items() if k != "content-type"}
    response = Response(stream(), status=200, headers=headers, content_type=SSE_HEADERS["content-type"])
    response.timeout = None
    return response
