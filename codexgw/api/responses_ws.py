"""WebSocket ``/v1/responses``: the Responses API over a WebSocket, the Codex CLI's preferred transport.

Theory of operation (codex-protocol.md §9; the protocol's shapes are :mod:`codexgw.translate.ws_protocol`):

* **Handshake.** The API key is checked as on every route (``Authorization: Bearer``); a bad one
  is refused with the HTTP 401 the other routes give (and an access-log line), before the upgrade.
  A stored key's policy (allowlist, limits, effort ceiling) runs on every turn, and its scope bounds
  the turn's accounts (issue 12); a refusal is the turn's error event. No subprotocol; hypercorn negotiates permessage-deflate, which Codex offers.
* **Turns.** Each ``response.create`` is one turn, served like ``POST /v1/responses``: the same fix-
  ups, account choice, affinity (the handshake's ``session-id``), failover before the first output,
  errors and one access-log line (``WS /v1/responses …``). One turn runs at a time per socket.
* **Upstream, bridged to HTTP.** Each turn goes to the backend's HTTP SSE endpoint, not to its
  WebSocket: a turn is then one ordinary request, so everything above (failover per turn, moving a
  conversation to another account when its account cools down, the keep-alive, the fake upstream)
  works as for HTTP, and no upstream socket pins a client's socket to one account for an hour. The
  cost: the backend keeps no per-socket state, so the socket keeps its own
  (:class:`~codexgw.translate.ws_session.SocketSession`): every turn, ``store: false`` ones and the
  warm-up included, to expand a ``previous_response_id`` into the whole conversation; an id from
  elsewhere is looked up among the responses codexgw stores (as over HTTP). The backend's warm-up
  (``generate: false``) has no HTTP form: codexgw answers it itself, with no upstream call.
* **Frames out.** The upstream's events go out as text frames, one per event, unchanged. An error
  before the first output is an ``error`` event with the ``status`` an HTTP answer would have had
  (Codex ignores one without it): a usage limit keeps ``resets_at`` and Codex shows its message.
  During upstream silence (before the first output from ``keepalive_after_s``, then every
  ``heartbeat_s``) a ``{"type": "keepalive"}`` text frame goes out: Codex's idle timer counts text
  frames only. hypercorn pings every ``heartbeat_s`` too, for proxies on the way.
* **Bad input** gets an ``error`` event (status 400) and the socket stays usable: a binary frame,
  invalid JSON, an unknown message type, a second ``response.create`` while one runs, a bad body.
  A frame over ``max_body_bytes`` is refused by hypercorn with close code 1009 (message too big).
* **Limits and ends.** A ``response.create`` on a socket older than ``ws_max_age_s`` (60 minutes)
  gets the backend's ``websocket_connection_limit_reached`` error and the socket is closed (Codex
  opens a new one). While the server drains (:mod:`codexgw.upstream.drain`) a new socket is
  refused 503 ``draining``, a new ``response.create`` gets that error and the socket closes (1001);
  a turn still open when the grace ends gets ``response.failed`` (``server_shutting_down``), then
  the close. A client that goes away (Codex just drops TCP) cancels its turn, which closes
  the upstream at once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import trio

from codexgw.api.body import OFF_THREAD_BYTES
from codexgw.api.boundary import error_answer
from codexgw.api.common import authenticate
from codexgw.api.exchange import Exchange
from codexgw.api.responses import PATHS, expand_history, response_saver, responses_store, tenant_of
from codexgw.api.server import BODY_WRITER
from codexgw.errors import CodexgwError, InvalidRequestError
from codexgw.translate.history import Conversation, body_for, previous_response_id, with_history
from codexgw.translate.params import prepare_responses_request
from codexgw.translate.stream_state import Outcome
from codexgw.translate.ws_protocol import (
    CONNECTION_LIMIT,
    KEEPALIVE,
    BadMessage,
    Create,
    ResponsesFrames,
    error_event,
    error_frame,
    parse_message,
    upstream_body,
    warmup_events,
)
from codexgw.translate.ws_session import SocketSession, Turn
from codexgw.upstream.failover import open_stream
from codexgw.upstream.gateway import Gateway
from codexgw.upstream.keepalive import Opening
from codexgw.upstream.relay import Saver, relay
from codexgw.upstream.stream import UpstreamStream

if TYPE_CHECKING:
    from codexgw.api.server import FrameWriter
    from codexgw.policy.keys import ApiKey

__all__ = ["ROUTE", "ResponsesWebSocket", "WebSocketRoutes"]

log = logging.getLogger("codexgw.responses_ws")

ROUTE = "/v1/responses (websocket)"
"""The metrics ``route`` label of WebSocket turns."""

ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]
]

BUSY = {
    "type": "invalid_request_error",
    "code": "response_already_in_progress",
    "message": "a response is already in progress on this socket: wait for its response.completed",
    "param": None,
}


class WebSocketRoutes:
    """ASGI app: WebSocket requests on :data:`~codexgw.api.responses.PATHS` served by
    :class:`ResponsesWebSocket`, those on any other path refused with 400
    ``websocket_not_supported`` (before the upgrade), the HTTP requests passed to ``app``."""

    def __init__(self, app: ASGIApp, gw: Gateway, *, default_instructions: str) -> None:
        self.app = app
        self.websocket = ResponsesWebSocket(gw, default_instructions=default_instructions)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
        elif scope["path"] in PATHS:
            await self.websocket(scope, receive, send)
        elif (await receive())["type"] == "websocket.connect":  # no other route serves a WebSocket
            error = InvalidRequestError(
                f"{scope['path']} does not serve a WebSocket; only {' and '.join(sorted(PATHS))} do",
                code="websocket_not_supported",
            )
            status, extra, body = error_answer(error, "GET", scope["path"])
            await _reject(send, status, extra, body)


class ResponsesWebSocket:
    """The ASGI handler of one Responses WebSocket (see the module docstring)."""

    def __init__(self, gw: Gateway, *, default_instructions: str) -> None:
        self.gw = gw
        self.default_instructions = default_instructions

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        path = scope["path"]
        handshake = Exchange(
            "GET", path, time.perf_counter(), metrics=self.gw.metrics, route=ROUTE, teams=self.gw.teams
        )
        try:
            if self.gw.drain.draining:  # shutting down: no new socket (issue 16)
                raise self.gw.drain.refusal()
            authenticate(self.gw, path, headers, handshake)  # the API key and its scope (issue 12)
        except CodexgwError as error:
            status, extra, body = error_answer(error, "GET", path)
            handshake.finish(status)
            await _reject(send, status, extra, body)
            return
        await send({"type": "websocket.accept"})
        socket = _Socket(self.gw, headers, path, send, self.default_instructions)
        socket.key, socket.scope = handshake.key, handshake.scope
        connection = scope.get("extensions", {}).get(BODY_WRITER)
        socket.writer = connection.frame_writer() if connection is not None else None
        await socket.serve(receive)


async def _reject(send: Any, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
    """Refuse the upgrade with an HTTP answer (the ASGI WebSocket HTTP response extension)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw += [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
    await send({"type": "websocket.http.response.body", "body": data})


class _Socket:
    """One accepted socket: its session, its turns, and the one writer of its frames."""

    def __init__(
        self, gw: Gateway, headers: dict[str, str], path: str, send: Any, default_instructions: str
    ) -> None:
        self.gw = gw
        self.headers = headers
        self.path = path
        self._send = send
        self.default_instructions = default_instructions
        self.session = SocketSession()
        self.opened_at = gw.clock()
        self.key: ApiKey | None = None
        """The handshake's API key (its policy runs on every turn), and the accounts it may reach."""
        self.scope: frozenset[int] | None = None
        self.writer: FrameWriter | None = None
        """The connection's frame writer (HTTP/1.1), which a turn's relay writes its frames with."""
        self._lock = trio.Lock()  # frames go out whole and in order (permessage-deflate's context too)
        self._active: object | None = None  # the running turn, if any
        self._closed = False

    async def send(self, frames: list[str]) -> None:
        """Write ``frames`` (text), in order, none interleaved with another task's."""
        async with self._lock:
            for frame in frames:
                await self._send({"type": "websocket.send", "text": frame})

    async def serve(self, receive: Any) -> None:
        """Read client messages until the client goes away (then cancel its turn)."""
        async with trio.open_nursery() as nursery:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message["type"] != "websocket.receive":
                    continue
                text = message.get("text")
                if text is not None and len(text) > OFF_THREAD_BYTES:  # a long history: off the loop
                    parsed = await trio.to_thread.run_sync(parse_message, text)
                else:
                    parsed = parse_message(text)
                if isinstance(parsed, BadMessage):
                    await self.send([error_event(400, parsed.error)])
                    continue
                if self._active is not None:
                    await self.send([error_event(400, BUSY)])
                    continue
                if self.gw.drain.draining:  # no new turn; Codex opens a new socket (elsewhere)
                    await self.send([error_frame(self.gw.drain.refusal())])
                    await self.close()
                    break
                if self.gw.clock() - self.opened_at >= self.gw.settings.ws_max_age_s:
                    await self.send([CONNECTION_LIMIT])
                    await self._send({"type": "websocket.close", "code": 1000})
                    break
                token = self._active = object()
                nursery.start_soon(self.turn, parsed, token, nursery)
            nursery.cancel_scope.cancel()  # the client left: its turn stops and closes the upstream

    async def close(self, code: int = 1001) -> None:
        """Close the socket once (1001 going away: the server is shutting down)."""
        if not self._closed:
            self._closed = True
            async with self._lock:
                await self._send({"type": "websocket.close", "code": code})

    def _release(self, token: object) -> None:
        """The turn ``token`` answered: the next ``response.create`` may come."""
        if self._active is token:
            self._active = None

    async def turn(self, create: Create, token: object, nursery: trio.Nursery) -> None:
        """One ``response.create``, to its last frame (errors before any output as an error event)."""
        exchange = Exchange(
            "WS",
            self.path,
            time.perf_counter(),
            metrics=self.gw.metrics,
            route=ROUTE,
            teams=self.gw.teams,
            key=self.key,
            scope=self.scope,
            accounted=True,
        )
        with self.gw.drain.work():
            try:
                await self._turn(create, token, exchange, nursery)
            except CodexgwError as exc:
                exchange.finish(exc.status)
                await self.send([error_frame(exc)])
            except Exception:
                log.exception("WebSocket turn failed on %s", self.path)
                exchange.finish(500)
                await self.send([error_frame(CodexgwError("Internal server error"))])
            finally:
                exchange.abandon()  # the client left mid-turn: the key's counters still end it
                self._release(token)
            if self.gw.drain.cutting:  # the turn was cut (its response.failed went out): close
                await self.close()

    async def _turn(self, create: Create, token: object, exchange: Exchange, nursery: trio.Nursery) -> None:
        gw = self.gw
        previous_id, history, body = await self._expand(create.body)
        prepared = prepare_responses_request(
            upstream_body(body),
            default_instructions=self.default_instructions,
            aliases=gw.settings.model_aliases,
        )
        exchange.model = str(prepared.body.get("model"))
        if self.key is not None:  # the key's policy, as on POST /v1/responses (teams contract §2)
            gw.teams.policy.admit(self.key, model=str(body.get("model")), body=prepared.body, now=gw.clock())
            exchange.admitted = True
        turn_input = prepared.body["input"][len(history.items) if history else 0 :]
        if create.warmup:  # no HTTP form upstream: answered here, kept for the turn that follows it
            response_id = f"resp_{uuid.uuid4().hex}"
            self.session.put(Turn(response_id, previous_id, None, turn_input, []))
            await self.send(warmup_events(response_id, exchange.model, int(time.time())))
            self._release(token)
            exchange.end_stream(Outcome.COMPLETED, None)
            return
        stream = await self._open(prepared.body, history, body, nursery)
        exchange.account = stream.account.name
        exchange.model = stream.model or exchange.model
        handler = ResponsesFrames(keep_items=True, failure_id=f"resp_{uuid.uuid4().hex}")
        save = await self._saver(stream, previous_id, turn_input, keep=body.get("store") is not False)
        relayed = relay(gw, stream, handler, on_end=exchange.end_stream, save=save)
        writer = self.writer
        if writer is not None:  # the relay writes the frames from its own read loop (issue 17)

            async def write(out: list[str]) -> None:
                await writer.send(out)  # not cancellable, as Relay.push requires
                if handler.state.finished:
                    self._release(token)

            await relayed.push(write)
            return
        async with aclosing(relayed) as frames:
            async for out in frames:
                await self.send(out)
                if handler.state.finished:
                    self._release(token)

    async def _expand(self, body: dict[str, Any]) -> tuple[str | None, Conversation | None, dict[str, Any]]:
        """``previous_response_id`` from this socket's turns, else from the stored responses.

        Raises:
            InvalidRequestError: ``previous_response_not_found`` (Codex then resends everything).
        """
        previous_id = previous_response_id(body)
        if previous_id is not None:
            history = self.session.expand(previous_id)
            if history is not None:
                return previous_id, history, with_history(body, history.items)
        return await expand_history(self.gw, body, tenant_of(self.key))

    async def _open(
        self,
        upstream: dict[str, Any],
        history: Conversation | None,
        body: dict[str, Any],
        nursery: trio.Nursery,
    ) -> UpstreamStream:
        """Open the turn's upstream stream, with keep-alive frames while it opens.

        Raises:
            CodexgwError: as :func:`~codexgw.upstream.failover.open_stream` (the turn's error event).
        """
        gw, headers = self.gw, dict(self.headers)
        metadata = body.get("client_metadata")
        turn_metadata = metadata.get("x-codex-turn-metadata") if isinstance(metadata, dict) else None
        if isinstance(turn_metadata, str):  # the handshake carried the warm-up's (request_kind prewarm)
            headers["x-codex-turn-metadata"] = turn_metadata
        opening = Opening(
            nursery,
            lambda: open_stream(
                gw,
                upstream,
                headers,
                prefer_account_id=history.account_id if history else None,
                body_for=body_for(upstream, history.owners) if history else None,
                scope=self.scope,
            ),
        )
        try:
            wait_s = gw.settings.keepalive_after_s or gw.settings.heartbeat_s
            while True:
                with gw.drain.cuttable() as cut:
                    opened = await opening.wait(wait_s)
                if cut.cancelled_caught:  # the drain's grace ran out before any output
                    raise gw.drain.shutting_down()
                if opened:
                    return opening.result()
                await self.send([KEEPALIVE])
                wait_s = gw.settings.heartbeat_s
        finally:
            await opening.aclose()

    async def _saver(
        self, stream: UpstreamStream, previous_id: str | None, turn_input: list[dict[str, Any]], *, keep: bool
    ) -> Saver:
        """Keep the finished turn in the socket's session, and in ``responses.db`` unless
        ``store: false`` (as over HTTP)."""
        account_id = stream.account.id
        stored = (
            response_saver(
                self.gw,
                await responses_store(self.gw),
                account_id,
                previous_id,
                turn_input,
                tenant_of(self.key),
            )
            if keep
            else None
        )

        async def save(response_id: str, output: list[dict[str, Any]]) -> None:
            if not response_id:
                return
            self.session.put(Turn(response_id, previous_id, account_id, turn_input, output))
            if stored is not None:
                await stored(response_id, output)

        return save
