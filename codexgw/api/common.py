"""Helpers shared by the routes: the gateway and exchange handles, response builders, the API-key check."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from quart import Response, current_app, g, request

from codexgw.api.exchange import Exchange
from codexgw.errors import AuthenticationError

if TYPE_CHECKING:
    from codexgw.upstream.gateway import Gateway
    from codexgw.upstream.stream import UpstreamStream

DROPPED_PARAMS_HEADER = "x-codexgw-dropped-params"
"""Names the request parameters codexgw removed because the ChatGPT backend rejects them."""


def gateway() -> Gateway:
    """The :class:`~codexgw.upstream.gateway.Gateway` of the running app."""
    return current_app.extensions["codexgw"]


def current_exchange() -> Exchange:
    """The :class:`~codexgw.api.exchange.Exchange` of the current Quart request (made on arrival)."""
    exchange = getattr(g, "exchange", None)
    if exchange is None:  # a request that failed before the app's before_request hooks ran
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        exchange = g.exchange = Exchange(
            request.method, request.path, time.perf_counter(), metrics=gateway().metrics, route=rule
        )
    return exchange


def json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response."""
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status=status,
        headers=headers or {},
        content_type="application/json",
    )


def response_headers(stream: UpstreamStream | None, dropped: list[str]) -> dict[str, str]:
    """Headers for a relayed answer: the upstream's relayed headers (none when the headers go out
    before the stream is open: the keep-alive) plus the dropped-params list."""
    headers = dict(stream.headers) if stream is not None else {}
    if dropped:
        headers[DROPPED_PARAMS_HEADER] = ", ".join(dropped)
    return headers


SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",  # nginx and friends: do not buffer the stream
}
"""The headers of every streamed answer."""

OPEN_PATHS = frozenset({"/health", "/"})
"""Paths served without the gateway API key."""

OPEN_PREFIXES = ("/dashboard/", "/dashboard")
"""Path prefixes served without it: the dashboard's pages hold no data and need a user login for
the API behind them (the key guards ``/v1``, not the login page)."""


def api_key_error(api_key: str | None, path: str, headers: Mapping[str, str]) -> AuthenticationError | None:
    """The error for a request without the gateway's API key, or ``None`` when it may pass.

    The key travels as ``Authorization: Bearer <key>`` or ``x-api-key``; it is compared in constant
    time. ``headers``: lower-case names.
    """
    if api_key is None or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    given = headers.get("authorization", "")
    token = given[7:].strip() if given[:7].lower() == "bearer " else headers.get("x-api-key", "")
    if hmac.compare_digest(token.encode(), api_key.encode()):
        return None
    return AuthenticationError("Invalid or missing API key: send 'Authorization: Bearer <key>'")
