"""The edge in front of every route: the cross-site rules (:class:`EdgeGuard`, the rules are
:mod:`codexgw.api.edge`'s), and the connection's side of an answer given before the request body was
read (issue 16 item 1).

An HTTP/1.1 connection can carry the next request only once the previous request's body has been
received whole: until then the bytes that follow are still that body. An answer that goes out
earlier (a 404, 405, 401, 403 or 415 decided from the request line and headers) leaves the
connection between two states, and hypercorn 0.18 then closes it from inside the application's
task, which quart-trio has cancelled by then, so the close never happens and the client's next
request on that connection waits forever (``POST /v1/embeddings`` then ``GET /v1/models`` with the
``openai`` SDK hung 8 times in 40).

The rule, on both kinds of route: an answer goes out once the body is in (read, or received and
discarded), for at most :data:`DRAIN_WAIT_S`; a body that is declared larger than the limit, goes
over it, or does not arrive in that time gets its answer with ``Connection: close``, and the answer's
last message is sent once the application has returned, outside the cancelled task, so the
connection really closes (on the hot routes: the last message is sent shielded). A client's own
``Connection: close`` is honoured the same way. HTTP/2 streams are independent: nothing to do there.

:class:`DrainingApp` does it around the Quart app (whose own receiver takes the body in, and drops
what no route reads); :func:`discard_body` is the hot routes' (:mod:`codexgw.api.hot`) way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from codexgw.api.boundary import error_answer
from codexgw.api.edge import EdgeRules, check, cors_headers, cross_origin_allowed, preflight_headers
from codexgw.api.exchange import Exchange

if TYPE_CHECKING:
    from codexgw.errors import ClientError
    from codexgw.upstream.gateway import Gateway

__all__ = ["DRAIN_WAIT_S", "DrainingApp", "EdgeGuard", "close_header", "declared_body", "discard_body"]

REFUSED_ROUTE = "refused"
"""The metrics ``route`` label of requests the edge refused."""

DRAIN_WAIT_S = 5.0
"""How long an early answer waits for the rest of the request body (s) before it closes instead."""

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def declared_body(scope: dict[str, Any]) -> int | None:
    """The body length the request announces: ``Content-Length`` (bytes), ``-1`` for a chunked or
    otherwise unsized body (``Transfer-Encoding``), ``None`` for no body at all."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() and int(value) > 0 else None
        if name == b"transfer-encoding":
            return -1
    return None


def close_header(scope: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """``[(b"connection", b"close")]`` on HTTP/1.x, nothing on HTTP/2 (which forbids the header)."""
    return [] if scope.get("http_version", "1.1").startswith("2") else [(b"connection", b"close")]


async def discard_body(receive: Receive, *, max_bytes: int) -> bool:
    """Receive and drop the rest of a request body: at most ``max_bytes`` and :data:`DRAIN_WAIT_S`.

    Returns:
        True when the body ended (or the client left), so the connection can carry the next
        request; False when it went over ``max_bytes`` or took too long (close the connection).
    """
    size = 0
    with trio.move_on_after(DRAIN_WAIT_S):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return True
            size += len(message.get("body", b""))
            if size > max_bytes:
                return False
            if not message.get("more_body", False):
                return True
    return False


class DrainingApp:
    """ASGI wrapper of the Quart app: an answer goes out once the request body is in (see the
    module docstring).

    Args:
        app: the Quart app.
        max_body_bytes: the body limit (bytes), read per request (it can change at runtime).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: Callable[[], int]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("http_version", "1.1").startswith("2"):
            await self.app(scope, receive, send)
            return
        declared = declared_body(scope)
        body_in = trio.Event()
        if declared is None:
            body_in.set()
        close = declared is not None and declared > self.max_body_bytes()  # a 413 from the headers
        last: list[dict] = []

        async def receive_and_watch() -> dict:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_in.set()
            return message

        async def send_when_body_in(message: dict) -> None:
            nonlocal close
            if message["type"] == "http.response.start" and not body_in.is_set():
                if not close:  # Quart's receiver takes the body in meanwhile (and drops what is unread)
                    with trio.move_on_after(DRAIN_WAIT_S):
                        await body_in.wait()
                    close = not body_in.is_set()
                if close:
                    message = {**message, "headers": [*message.get("headers", ()), *close_header(scope)]}
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                last.append(message)  # sent below, once Quart's cancelled task group is gone: a
                return  # connection that must close (ours or the client's Connection: close) closes

            await send(message)

        await self.app(scope, receive_and_watch, send_when_body_in)
        if last:
            await send(last[0])


class EdgeGuard:
    """ASGI app in front of everything: refuses what :func:`codexgw.api.edge.check` refuses
    (an access-log line, route label :data:`REFUSED_ROUTE`), answers the preflights of allowed
    origins, adds their CORS headers, and passes the rest to ``app``.

    One pass over the headers and a few set lookups per request (the hot routes run behind it).
    """

    def __init__(self, app: ASGIApp, gw: Gateway, rules: EdgeRules) -> None:
        self.app = app
        self.gw = gw
        self.rules = rules

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, send)
            return
        host = b""
        origin = content_type = request_method = request_headers = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                has_body = value != b"0"
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"access-control-request-method":
                request_method = value
            elif name == b"access-control-request-headers":
                request_headers = value
        method = scope.get("method", "GET")
        host_text = host.decode("latin-1")
        origin_text = origin.decode("latin-1") if origin is not None else None
        refusal = check(
            self.rules,
            method,
            host_text,
            origin_text,
            content_type.decode("latin-1") if content_type is not None else None,
            has_body=has_body,
        )
        if refusal is not None:
            await self._refuse(scope, receive, send, refusal, has_body=has_body)
            return
        if origin_text is None or kind != "http" or not cross_origin_allowed(self.rules, origin_text):
            await self.app(scope, receive, send)  # no Origin, or the gateway's own page
            return
        if method == "OPTIONS" and request_method is not None:
            headers = preflight_headers(
                origin_text, request_headers.decode("latin-1") if request_headers else None
            )
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = cors_headers(origin_text)

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _refuse(
        self, scope: dict[str, Any], receive: Receive, send: Send, refusal: ClientError, *, has_body: bool
    ) -> None:
        method = scope.get("method", "GET")
        path = scope["path"]
        exchange = Exchange(method, path, time.perf_counter(), metrics=self.gw.metrics, route=REFUSED_ROUTE)
        status, headers, body = error_answer(refusal, method, path)
        exchange.finish(status)
        data = json.dumps(body, separators=(",", ":")).encode()
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw += [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        if scope["type"] == "websocket":
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
                await send({"type": "websocket.http.response.body", "body": data})
            return
        if has_body and not await discard_body(receive, max_bytes=self.gw.settings.max_body_bytes):
            raw += close_header(scope)
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": data})
