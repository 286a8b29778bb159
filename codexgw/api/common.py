"""Helpers shared by the routes: the gateway handle, response builders, stream cleanup."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import trio
from quart import Response, current_app

if TYPE_CHECKING:
    from ..gateway import Gateway
    from ..relay import UpstreamStream

DROPPED_PARAMS_HEADER = "x-codexgw-dropped-params"
"""Names the request parameters codexgw removed because the ChatGPT backend rejects them."""


def gateway() -> Gateway:
    """The :class:`~codexgw.gateway.Gateway` of the running app."""
    return current_app.extensions["codexgw"]


def json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response."""
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status=status,
        headers=headers or {},
        content_type="application/json",
    )


def response_headers(stream: UpstreamStream, dropped: list[str]) -> dict[str, str]:
    """Headers for a relayed answer: the upstream's relayed headers plus the dropped-params list."""
    headers = dict(stream.headers)
    if dropped:
        headers[DROPPED_PARAMS_HEADER] = ", ".join(dropped)
    return headers


def sse_response(body: AsyncIterator[bytes], headers: dict[str, str]) -> Response:
    """A streamed ``text/event-stream`` response that never times out (design §5)."""
    response = Response(
        body,
        status=200,
        headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
        content_type="text/event-stream; charset=utf-8",
    )
    response.timeout = None
    return response


async def upstream_closed(stream: UpstreamStream) -> None:
    """Close the upstream response even while the route is being cancelled (client went away)."""
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        await stream.aclose()
