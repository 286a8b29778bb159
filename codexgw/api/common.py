"""Helpers shared by the routes: the gateway and exchange handles, response builders, the API-key check."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from quart import Response, current_app, g, request

from codexgw.api.exchange import Exchange
from codexgw.errors import ForbiddenError

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
        gw = gateway()
        exchange = g.exchange = Exchange(
            request.method, request.path, time.perf_counter(), metrics=gw.metrics, route=rule, teams=gw.teams
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
"""Paths served without an API key."""

KEY_FREE_PREFIXES: tuple[str, ...] = ("/api/",)
"""Paths that authenticate themselves (the admin API: a session cookie or an admin key)."""

ADMIN_PATHS = frozenset({"/status", "/metrics"})
"""Paths that, once keys are required, need an admin key (a stored admin key or ``--api-key``)."""

OPEN_PREFIXES = ("/dashboard/", "/dashboard")
"""Path prefixes served without an API key: the dashboard's pages hold no data and need a user login for
the API behind them (the key guards ``/v1``, not the login page)."""


def authenticate(gw: Gateway, path: str, headers: Mapping[str, str], exchange: Exchange) -> None:
    """Check the API key of a request for ``path`` and record it (and its scope) on ``exchange``
    (teams contract §1, ``Teams.authenticate``). ``headers``: lower-case names.

    Open paths and the admin API pass unchecked; on an open gateway (no stored key, no
    ``--api-key``) every request passes anonymously, as before teams.

    Raises:
        AuthenticationError: 401 ``invalid_api_key``: no key, or an unknown, revoked or expired one.
        ForbiddenError: 403, ``/status`` or ``/metrics`` with a key that is not an admin key.
    """
    if path in OPEN_PATHS or path.startswith(KEY_FREE_PREFIXES) or path.startswith(OPEN_PREFIXES):
        return
    key, scope = gw.teams.authenticate(headers)
    exchange.key, exchange.scope = key, scope
    if key is not None and not key.admin and path in ADMIN_PATHS:
        raise ForbiddenError(f"{path} needs an admin API key")
