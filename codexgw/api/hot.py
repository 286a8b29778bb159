"""The two hot routes, ``POST /v1/responses`` and ``POST /v1/chat/completions``, served on plain ASGI.

:class:`HotRoutes` sits in front of the Quart app and answers those paths itself; everything else
(``/v1/models``, ``/status``, ``/metrics``, ``/v1/responses/compact``, the WebSocket refusal, the
admin API...) goes to Quart. Quart builds a request and an app context, matches the URL, runs hooks and wraps the
response for every request: about 200 µs of CPU per request over a bare ASGI app on this stack
(``bench/ceiling.py``, issue 7), a tenth of a relayed request's cost. The behaviour is the one the
Quart app gives every route (:mod:`codexgw.api.app`): the API key (and its policy, with the
``x-ratelimit-*`` headers on every answer of a key with limits), the body size limit and
``Content-Encoding``, errors in OpenAI's shape with their status and headers, one access-log line
and the request metrics, and a client that goes away cancels the request and closes the upstream.

The route code (``chat.create_chat_completion``, ``responses.create_response``) takes a
:class:`Call` and returns a :class:`JSONReply` or a :class:`StreamReply`, with no framework in sight.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from codexgw.api.body import parse_json_body_async
from codexgw.api.boundary import error_answer, status_error
from codexgw.api.common import SSE_HEADERS, authenticate
from codexgw.api.exchange import Exchange
from codexgw.api.guard import close_header, declared_body, discard_body
from codexgw.api.server import BODY_WRITER
from codexgw.errors import ClientError, PayloadTooLargeError
from codexgw.upstream.relay import Pushable, upstream_closed

if TYPE_CHECKING:
    from codexgw.upstream.gateway import Gateway
    from codexgw.upstream.keepalive import Opening
    from codexgw.upstream.stream import UpstreamStream

ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]
]

BODY_TIMEOUT_S = 300.0
"""How long a client may take to send its request body (Quart's ``BODY_TIMEOUT`` on the other routes)."""


@dataclass
class Call:
    """One request on a hot route: what the route code reads, and the exchange record it fills.

    Attributes:
        headers: the request headers, lower-case names (the first of repeated ones).
        raw_body: the body as received (before ``Content-Encoding``).
        exchange: the request's record; the route sets its account, model and usage as it learns
            them, and hands :meth:`~codexgw.api.exchange.Exchange.end_stream` to a stream.
    """

    gw: Gateway
    headers: dict[str, str]
    raw_body: bytes
    exchange: Exchange
    default_instructions: str
    reasoning_mode: str

    async def json_body(self) -> Any:
        """The body, decoded and parsed (:func:`codexgw.api.body.parse_json_body_async`: large ones
        in a worker thread)."""
        max_bytes = self.gw.settings.max_body_bytes
        encoding = self.headers.get("content-encoding", "")
        return await parse_json_body_async(self.raw_body, encoding, max_bytes=max_bytes)

    def admit(self, model: str, body: dict[str, Any]) -> None:
        """The key's policy for a request of ``model`` whose upstream body is ``body`` (teams contract
        §2: allowlist, rate limits, effort ceiling; ``Teams.policy``). The answer gets the policy's
        headers; ``body``'s effort may be lowered.

        Raises:
            ForbiddenError: 403 ``model_not_allowed``.
            RateLimitError: 429 ``rate_limit_exceeded``.
        """
        exchange = self.exchange
        if exchange.key is None:
            return
        exchange.policy_headers = self.gw.teams.policy.admit(
            exchange.key, model=model, body=body, now=self.gw.clock()
        )
        exchange.admitted = True


@dataclass
class JSONReply:
    """A whole JSON answer."""

    payload: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False
    """Close the connection after it: the request body was left unread (:mod:`codexgw.api.guard`)."""


@dataclass
class StreamReply:
    """A ``text/event-stream`` answer; ``body`` finishes the exchange itself when it ends.

    ``upstream`` (or the ``opening`` of a keep-alive answer, :mod:`codexgw.upstream.keepalive`) is
    closed after the body in any case: a body never started (the client left between the route's
    return and the first write) never runs its own ``finally``.
    """

    body: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    upstream: UpstreamStream | None = None
    opening: Opening | None = None


Route = Callable[[Call], Awaitable["JSONReply | StreamReply"]]


class _ClientGone(Exception):
    """The client closed the connection before its request body arrived."""


class HotRoutes:
    """ASGI app: ``routes`` (path → route) served here, every other request passed to ``app``.

    Args:
        app: the Quart app.
        gw: the gateway.
        routes: path → route code, for ``POST`` (any other method gets 405).
        default_instructions: the ``instructions`` sent when a request has none.

    The default reasoning display is read from ``gw.settings`` per request (``PATCH /api/settings``
    changes it at runtime).
    """

    def __init__(
        self,
        app: ASGIApp,
        gw: Gateway,
        routes: dict[str, Route],
        *,
        default_instructions: str,
    ) -> None:
        self.app = app
        self.gw = gw
        self.routes = routes
        self.default_instructions = default_instructions

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict]],
        send: Callable[[dict], Awaitable[None]],
    ) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        exchange = Exchange(
            method,
            path,
            time.perf_counter(),
            metrics=self.gw.metrics,
            route=path,
            teams=self.gw.teams,
        )
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        call = Call(
            self.gw, headers, b"", exchange, self.default_instructions, self.gw.settings.reasoning_mode
        )
        drain = self.gw.drain
        if drain.draining:  # no new work (issue 16): 503 draining, and HTTP/1.1 closes the connection
            refusal = drain.refusal()
            exchange.finish(refusal.status)
            reply = JSONReply(refusal.to_body(), status=refusal.status, headers=dict(refusal.headers))
            await _send_json(send, reply, close_header(scope))  # the body is left unread: close
            return
        with drain.work():
            await self._serve(call, route, scope, receive, send)

    async def _serve(
        self,
        call: Call,
        route: Route,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict]],
        send: Callable[[dict], Awaitable[None]],
    ) -> None:
        exchange = call.exchange
        try:
            async with trio.open_nursery() as nursery:
                try:
                    reply = await self._answer(call, route, scope, receive, nursery)
                except _ClientGone:
                    return
                if exchange.key is not None and (exchange.key.limited or exchange.policy_headers):
                    policy = self.gw.teams.answer_headers(exchange.key, exchange.policy_headers)
                    reply.headers = {**policy, **reply.headers}
                try:
                    if isinstance(reply, StreamReply):
                        await _send_stream(send, reply, scope)  # its body finishes the exchange when it ends
                        return
                    # before the answer goes out, as Quart's after_request: a client's next call sees it
                    exchange.finish(reply.status)
                    await _send_json(send, reply, close_header(scope) if reply.close else [])
                finally:
                    nursery.cancel_scope.cancel()  # the disconnect watcher
        finally:
            exchange.abandon()  # the client left first: its key's counters still end the request

    async def _answer(
        self,
        call: Call,
        route: Route,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict]],
        nursery: trio.Nursery,
    ) -> JSONReply | StreamReply:
        """Run ``route`` (after the API key and the body), turning errors into their replies.

        Once the body is in, a task of ``nursery`` watches for the client going away and then cancels
        the nursery: the route (e.g. waiting on the upstream) and the reply's writing stop, and the
        upstream is closed.
        """
        exchange = call.exchange
        body_pending = declared_body(scope) is not None
        try:
            # first, as on the Quart routes: no key, no hint about the routes
            authenticate(self.gw, exchange.path, call.headers, exchange)
            exchange.accounted = True  # a refused key's request is no key's usage
            if exchange.key is not None and exchange.key.reasoning_mode is not None:
                call.reasoning_mode = exchange.key.reasoning_mode  # the request's header still wins
            if exchange.method != "POST":
                raise status_error(
                    405,
                    method=exchange.method,
                    path=exchange.path,
                    max_body_bytes=self.gw.settings.max_body_bytes,
                )
            call.raw_body = await _read_body(receive, call.headers, self.gw.settings.max_body_bytes)
            body_pending = False
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            with self.gw.drain.cuttable():  # the drain's grace ran out before any byte went out
                return await route(call)
            raise self.gw.drain.shutting_down()
        except _ClientGone:
            raise
        except Exception as exc:  # the one boundary's rules (codexgw.api.boundary), as on Quart
            status, headers, body = error_answer(exc, exchange.method, exchange.path)
            reply = JSONReply(body, status=status, headers=headers)
            if body_pending:  # answered from the headers: the body must go before the next request
                cut = isinstance(exc, ClientError) and exc.status in (408, 413)
                reply.close = cut or not await discard_body(
                    receive, max_bytes=self.gw.settings.max_body_bytes
                )
            return reply


async def _read_body(
    receive: Callable[[], Awaitable[dict]], headers: dict[str, str], max_bytes: int
) -> bytes:
    """The whole request body, at most ``max_bytes`` (as sent, before ``Content-Encoding``).

    Raises:
        PayloadTooLargeError: ``Content-Length`` or the bytes received exceed ``max_bytes``.
        ClientError: 408, the body took longer than :data:`BODY_TIMEOUT_S`.
        _ClientGone: the client disconnected.
    """
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"the request body exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    with trio.move_on_after(BODY_TIMEOUT_S):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLargeError(f"the request body exceeds {max_bytes} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    raise ClientError("The client did not send the request body in time", status=408)


async def _cancel_on_disconnect(receive: Callable[[], Awaitable[dict]], scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


async def _send_json(
    send: Callable[[dict], Awaitable[None]], reply: JSONReply, extra: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps(reply.payload, separators=(",", ":")).encode()
    headers = {**reply.headers, "content-type": "application/json", "content-length": str(len(body))}
    raw = _encode_headers(headers) + extra
    await send({"type": "http.response.start", "status": reply.status, "headers": raw})
    with trio.CancelScope(shield=True):  # the disconnect watcher must not cancel the close (api/guard.py)
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_stream(
    send: Callable[[dict], Awaitable[None]], reply: StreamReply, scope: dict[str, Any]
) -> None:
    """Send ``reply``: the head, each chunk of its body, the body's end. On an HTTP/1.1
    connection (plain TCP or TLS) the chunks go through the connection's
    :class:`~codexgw.api.server.BodyWriter` (framed by codexgw, no ASGI message per chunk);
    otherwise (h2), and for the end, through ``send``."""
    headers = {**reply.headers, **SSE_HEADERS}
    try:
        async with aclosing(reply.body) as body:
            await send({"type": "http.response.start", "status": 200, "headers": _encode_headers(headers)})
            connection = scope.get("extensions", {}).get(BODY_WRITER)
            writer = connection.body_writer() if connection is not None else None
            if writer is not None:
                write = writer.send
                if isinstance(body, Pushable):  # the relay writes from its own read loop (issue 17)
                    await body.push(write)
                else:
                    async for chunk in body:
                        await write(chunk)
            else:
                async for chunk in body:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        with trio.CancelScope(shield=True):  # as in _send_json
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if reply.upstream is not None and not reply.upstream.response.is_closed:
            await upstream_closed(reply.upstream)
        if reply.opening is not None:
            await reply.opening.aclose()
