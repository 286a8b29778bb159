"""hypercorn's trio worker, with one change to the connection: a chunk goes straight to the socket.

Per chunk a streamed response costs hypercorn's trio connection (``hypercorn.trio.tcp_server.
TCPServer.protocol_send``) a ``trio.Lock`` acquire (a scheduler round even when nobody holds it), a
shielded cancel scope and ``SocketStream.send_all`` (another scheduler round after the send
succeeded). With paced events (a model's tokens tens of ms apart, each its own chunk) that was about
a fifth of the server's CPU per relayed event (issue 17, README "Paced events").

:class:`Connection` is hypercorn's connection with that one method changed: when the connection is
plain TCP and no other send is in progress (the lock is free), the bytes go to the socket with one
non-blocking ``send``; whatever the socket did not take goes the original way (under the lock, so
order is kept, and waiting for the socket like before). Over TLS the chunk is encrypted with the
connection's own ``SSLObject`` and its records sent the same way when the ``SSLStream``'s send
side is idle (:class:`TlsWriter`); a send while another is waiting takes hypercorn's path
unchanged. One more change: when the read loop ends (the client closed),
the keep-alive timer stops, so the connection closes at once (:meth:`Connection._read_data`).

A streamed answer's chunks can skip hypercorn's ASGI send chain too: the connection offers itself
in each request's scope (:data:`BODY_WRITER`) and, once the response head went out over HTTP/1.1
with a chunked body, :meth:`Connection.body_writer` gives a :class:`BodyWriter` that frames each
chunk itself and hands it to the connection's send (above; under TLS hypercorn's). The hot routes
use it (:mod:`codexgw.api.hot`); the body's end goes the ASGI way.

:func:`serve_http` is ``hypercorn.trio.serve`` (lifespan, the configured sockets, graceful
shutdown on ``shutdown_trigger``) serving connections of that class; hypercorn itself is not
changed (nothing global is patched), so anything else in the process using hypercorn gets its own
behaviour. It relies on hypercorn 0.18's layout (``TCPServer``, ``Lifespan``, ``WorkerContext``);
``tests/test_http_server.py`` pins the behaviour and fails when that layout changes.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import h11
import trio
from h11._writers import ChunkedWriter
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app
from wsproto import Connection as WSConnection
from wsproto import ConnectionState as WSState

__all__ = ["BODY_WRITER", "BodyWriter", "Connection", "FrameWriter", "serve_http"]

BODY_WRITER = "codexgw.body_writer"
"""The ASGI scope extension (``scope["extensions"][BODY_WRITER]``) under which a connection
offers its :class:`Connection` to the app: after ``http.response.start`` went out,
``connection.body_writer()`` gives a :class:`BodyWriter` or ``None``; after ``websocket.accept``,
``connection.frame_writer()`` gives a :class:`FrameWriter` or ``None``."""


class Connection(TCPServer):
    """One client connection: hypercorn's, sending each chunk straight to the socket when it can
    (see the module docstring).

    Attributes:
        direct_sends: chunks the socket took whole at once (tests and the bench read it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stream = self.stream
        self._raw = _nonblocking_socket(stream) if type(stream) is trio.SocketStream else None
        self._tls = TlsWriter.attach(stream) if self._raw is None else None
        self.direct_sends = 0
        self.app = _OfferConnection(self.app, self)

    async def protocol_send(self, event: Event) -> None:
        """hypercorn's ``protocol_send``; a :class:`RawData` on a plain-TCP connection with no send
        in progress is written with one non-blocking ``send`` first (no lock, no scope, no
        scheduler round when the socket takes it all)."""
        if type(event) is RawData and (self._raw is not None or self._tls is not None):
            await self.send_raw(event.data)
        else:
            await super().protocol_send(event)

    async def send_raw(self, data: bytes) -> None:
        """Write ``data`` to the client. Plain TCP: one non-blocking ``send`` when no other send is
        in progress; what the socket does not take goes hypercorn's way, under its lock (waiting
        for the socket, order kept). TLS: when no send is in progress there either, ``data`` is
        encrypted and its records sent the same way (:class:`TlsWriter`), the rest of a partial
        send under the ``SSLStream``'s own send lock; otherwise hypercorn's way (its lock and
        ``SSLStream.send_all``). A reset or closed socket is hypercorn's :class:`Closed` (the app's ``receive`` then gives
        ``http.disconnect``); nothing raises. Not cancellable: the wait for the lock is shielded
        as hypercorn shields the send itself, so a chunk is written whole or not at all (the
        direct relay writes from inside its read loop's cancel scope, ``UpstreamStream.pump``)."""
        raw = self._raw
        if raw is None and (tls := self._tls) is not None and not self.send_lock.locked():
            records = tls.encrypt(data)
            if records is not None:
                await self._send_records(tls, records)
                return
        if raw is not None and not self.send_lock.locked():
            sent = await self._send_now(raw, data)
            if sent is None:
                return
            data = data[sent:]  # the rest waits for the socket, under the lock
        with trio.CancelScope(shield=True):  # never cut mid-chunk (the relay's read scope, issue 17)
            await super().protocol_send(RawData(data=data))

    async def _send_now(self, raw: socket.socket, data: bytes) -> int | None:
        """One non-blocking ``send`` of ``data``: the bytes the socket took when it did not take
        them all, else ``None`` (all taken, counted in :attr:`direct_sends`; or the socket was reset
        or closed, which is hypercorn's :class:`Closed`, handled here and shielded). No checkpoint
        unless it handles the close."""
        try:
            sent = raw.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:  # reset, broken pipe, closed: what the original maps to Closed
            with trio.CancelScope(shield=True):
                await self.protocol.handle(Closed())
            return None
        if sent == len(data):
            self.direct_sends += 1
            return None
        return sent

    async def _send_records(self, tls: TlsWriter, records: bytes) -> None:
        """Send TLS ``records`` just made by ``tls`` (nothing may go out before them): one
        non-blocking ``send``, the rest under the ``SSLStream``'s send lock (free until now, and
        taken before any other task runs), so the stream's own sends queue behind it."""
        sent = await self._send_now(tls.raw, records)
        if sent is None:
            return
        with trio.CancelScope(shield=True):
            async with tls.lock:
                try:
                    await tls.transport.send_all(records[sent:])
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.protocol.handle(Closed())

    async def _read_data(self) -> None:
        """hypercorn's read loop; once it ends (the client closed or reset the connection, or the
        read timed out) the keep-alive timer is stopped, so the connection closes now. hypercorn
        0.18 leaves that timer running (``keep_alive_timeout``: 75 s under ``serve``) and the
        connection's task group waits for it: a client that closed between requests left its
        socket in CLOSE-WAIT, holding a file descriptor, until the timer ran out. A request still
        running keeps the connection until it ends, as before (it gets ``http.disconnect``)."""
        await super()._read_data()
        await self.idle_task.stop()

    def body_writer(self) -> BodyWriter | None:
        """A writer for the body of the response whose head just went out, or ``None`` when the
        connection is not in the state it knows: HTTP/1.1 (hypercorn's ``H11Protocol``, not h2
        or a WebSocket), h11 sending a chunked body (``h11.SEND_BODY`` with its
        ``ChunkedWriter``: h11 0.16's layout), the request's ``HTTPStream`` open.
        ``tests/test_http_server.py`` fails when that layout changes."""
        protocol = getattr(getattr(self, "protocol", None), "protocol", None)
        if type(protocol) is not H11Protocol:
            return None
        stream = protocol.stream
        h11_connection = protocol.connection
        if (
            type(stream) is not HTTPStream
            or stream.closed
            or h11_connection.our_state is not h11.SEND_BODY
            or type(getattr(h11_connection, "_writer", None)) is not ChunkedWriter
        ):
            return None
        return BodyWriter(self, stream)

    def frame_writer(self) -> FrameWriter | None:
        """A writer for the text messages of the WebSocket accepted on this connection, or
        ``None`` when the connection is not in the state it knows: a WebSocket over HTTP/1.1
        (hypercorn's ``H11Protocol`` with its ``WSStream`` connected, wsproto's connection open),
        not over h2. ``tests/test_responses_ws.py::test_a_turns_frames_are_written_from_the_read_loop_uncompressed``
        fails when that layout changes (the turns would not be pushed)."""
        protocol = getattr(getattr(self, "protocol", None), "protocol", None)
        if type(protocol) is not H11Protocol:
            return None
        stream = protocol.stream
        if type(stream) is not WSStream or stream.state is not ASGIWebsocketState.CONNECTED:
            return None
        connection = getattr(stream, "connection", None)
        if type(connection) is not WSConnection or connection.state is not WSState.OPEN:
            return None
        return FrameWriter(self, stream, connection)


class TlsWriter:
    """Encrypts a chunk for one TLS client connection with its ``trio.SSLStream``'s own
    ``ssl.SSLObject``, without ``SSLStream.send_all`` (issue 17: its conflict detector, its
    ``_retry`` loop, its send lock and a scheduler round after the send, per chunk; a TLS client
    cost about twice a plain one per paced event). Only while the stream's send side is idle: the
    handshake done, the stream unbroken, no TLS bytes waiting in its outgoing ``MemoryBIO`` or held
    back (``_delayed_outgoing``), its send lock free. Then the records :meth:`encrypt` returns come
    next on the wire, and the caller sends them before anything else can run
    (:meth:`Connection._send_records`). Otherwise ``None``, and the chunk goes
    ``SSLStream.send_all``'s way.

    It relies on trio 0.35's ``SSLStream`` layout (``transport_stream``, ``_ssl_object``,
    ``_outgoing``, ``_inner_send_lock``, ``_delayed_outgoing``, ``_handshook``, ``_state``), as
    :class:`codexgw.client.direct_tls.TlsReceiver` does; :meth:`attach` checks it.
    """

    __slots__ = ("_outgoing", "_stream", "_write", "lock", "raw", "transport")

    def __init__(self, stream: trio.SSLStream, lock: trio.StrictFIFOLock, raw: socket.socket) -> None:
        self._stream = stream
        self._write = stream._ssl_object.write  # type: ignore[attr-defined]
        self._outgoing = stream._outgoing  # type: ignore[attr-defined]
        self.lock = lock
        """The ``SSLStream``'s own send lock (``_inner_send_lock``)."""
        self.raw = raw
        self.transport = stream.transport_stream

    @classmethod
    def attach(cls, stream: object) -> TlsWriter | None:
        """The writer for ``stream``, or ``None`` when it is not a ``trio.SSLStream`` of the known
        layout straight over a non-blocking ``trio.SocketStream``."""
        if type(stream) is not trio.SSLStream:
            return None
        inner = stream.transport_stream
        lock = getattr(stream, "_inner_send_lock", None)
        if (
            type(inner) is not trio.SocketStream
            or not isinstance(getattr(stream, "_ssl_object", None), ssl.SSLObject)
            or not isinstance(getattr(stream, "_outgoing", None), ssl.MemoryBIO)
            or type(lock) is not trio.StrictFIFOLock
            or not all(hasattr(stream, name) for name in ("_delayed_outgoing", "_handshook", "_state"))
        ):
            return None
        raw = _nonblocking_socket(inner)
        return None if raw is None else cls(stream, lock, raw)

    def encrypt(self, data: bytes) -> bytes | None:
        """The TLS records carrying ``data`` (non-empty), or ``None`` when the stream's send side
        is not idle or the TLS layer wants to read first (nothing of ``data`` was taken then)."""
        stream = self._stream
        if (
            getattr(stream._state, "name", None) != "OK"  # type: ignore[attr-defined]
            or not stream._handshook.done  # type: ignore[attr-defined]
            or stream._delayed_outgoing is not None  # type: ignore[attr-defined]
            or self.lock.locked()
            or self._outgoing.pending
        ):
            return None
        try:
            self._write(data)
        except ssl.SSLError:  # SSLWantReadError among them: SSLStream.send_all retries or raises
            return None
        return self._outgoing.read()


def _nonblocking_socket(stream: trio.SocketStream) -> socket.socket | None:
    """The stdlib socket under ``stream`` (trio's ``SocketStream.socket._sock``), or ``None`` when
    it is not a non-blocking ``socket.socket`` (another trio layout)."""
    raw = getattr(getattr(stream, "socket", None), "_sock", None)
    return raw if isinstance(raw, socket.socket) and not raw.getblocking() else None


class BodyWriter:
    """Writes one streamed response's body chunks to its HTTP/1.1 client, framed here
    (the size in hex, CRLF, the data, CRLF: RFC 9112 §7.1) instead of through hypercorn's ASGI send
    chain and h11 (``HTTPStream.app_send`` -> ``H11Protocol.stream_send`` -> ``h11.Connection.send``
    per chunk: the bare stack's own cost, issue 17). h11 keeps no count of a chunked body, so the
    body's end still goes the ASGI way (``http.response.body`` with ``more_body: False``: h11 writes
    the last chunk and moves on to the next request). Made by :meth:`Connection.body_writer`.
    """

    __slots__ = ("_connection", "_stream")

    def __init__(self, connection: Connection, stream: HTTPStream) -> None:
        self._connection = connection
        self._stream = stream

    async def send(self, data: bytes) -> None:
        """Send one chunk of ``data`` (bytes; empty sends nothing). Once the client is gone (the
        stream closed), the chunk is dropped, as hypercorn drops a closed stream's body; the app
        learns it from ``http.disconnect``. Raises nothing."""
        if data and not self._stream.closed:
            await self._connection.send_raw(b"%x\r\n%b\r\n" % (len(data), data))


class FrameWriter:
    """Writes one WebSocket's text messages to its HTTP/1.1 client, framed here (RFC 6455 §5.2:
    FIN and the text opcode, the payload length, the payload; a server's frames are not masked)
    instead of through hypercorn's ASGI send and wsproto per message (``WSStream.app_send`` ->
    ``wsproto.Connection.send`` -> ``H11Protocol.stream_send``: most of a relayed event's cost
    over the WebSocket, issue 17). Each message is sent uncompressed even when permessage-deflate
    was negotiated: RSV1 unset marks a message as not compressed, which RFC 7692 §6 lets an
    endpoint choose per message, and wsproto's compressor (hypercorn's own frames: pings, the
    close, the app's other messages) is left untouched. Made by :meth:`Connection.frame_writer`.
    """

    __slots__ = ("_connection", "_stream", "_ws")

    def __init__(self, connection: Connection, stream: WSStream, ws: WSConnection) -> None:
        self._connection = connection
        self._stream = stream
        self._ws = ws

    async def send(self, messages: list[str]) -> None:
        """Send ``messages`` (text), one frame each, in one write. Once the socket is closing or
        closed they are dropped, as hypercorn drops a message sent then; the app learns it from
        ``websocket.disconnect``. Not cancellable (see :meth:`Connection.send_raw`); raises nothing."""
        if messages and self._ws.state is WSState.OPEN and not self._stream.closed:
            await self._connection.send_raw(b"".join([text_frame(text) for text in messages]))


def text_frame(text: str) -> bytes:
    """One unmasked, final text frame carrying ``text`` (RFC 6455 §5.2: a 7-bit length, or 126 and
    16 bits, or 127 and 64 bits)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


class _OfferConnection:
    """hypercorn's app wrapper for one connection: puts the connection into each HTTP request's
    and WebSocket's scope under :data:`BODY_WRITER`, then calls the app as hypercorn would."""

    __slots__ = ("_app", "_connection")

    def __init__(self, app: Any, connection: Connection) -> None:
        self._app = app
        self._connection = connection

    async def __call__(self, scope: dict, receive: Any, send: Any, sync_spawn: Any, call_soon: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope.setdefault("extensions", {})[BODY_WRITER] = self._connection
        await self._app(scope, receive, send, sync_spawn, call_soon)


async def serve_http(
    app: Any,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI ``app`` as ``hypercorn.trio.serve(app, config, shutdown_trigger=…)`` does,
    with :class:`Connection` for each connection (TCP and TLS; no QUIC, no ``max_requests``).

    ``task_status`` receives the bound URLs (``["http://127.0.0.1:8080"]``) once listening. When
    ``shutdown_trigger`` returns: stop accepting, give open connections ``config.graceful_timeout``
    seconds, run the lifespan shutdown, return.

    Raises:
        OSError: a socket could not be bound (hypercorn's own error, inside an exception group).
    """
    wrapped = wrap_app(app, config.wsgi_max_body_size, None)
    state: dict = {}
    lifespan = Lifespan(wrapped, config, state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            sockets = config.create_sockets()
            ssl_context = config.create_ssl_context()
            listeners: list[trio.abc.Listener] = []
            urls = []
            for secure, found in ((True, sockets.secure_sockets), (False, sockets.insecure_sockets)):
                for sock in found:
                    sock.listen(config.backlog)
                    listener: trio.abc.Listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                    if secure:
                        listener = trio.SSLListener(listener, ssl_context, https_compatible=True)
                    listeners.append(listener)
                    urls.append(f"{'https' if secure else 'http'}://{repr_socket_addr(sock.family, sock.getsockname())}")
            task_status.started(urls)
            handler = partial(Connection, wrapped, config, context, ConnectionState(state.copy()))
            try:
                async with trio.open_nursery(strict_exception_groups=True) as nursery:
                    nursery.start_soon(raise_shutdown, shutdown_trigger)
                    nursery.start_soon(raise_shutdown, context.terminate.wait)
                    nursery.start_soon(
                        partial(trio.serve_listeners, handler, listeners, handler_nursery=server_nursery)
                    )
                    await trio.sleep_forever()
            except BaseExceptionGroup as group:
                _, others = group.split((ShutdownError, KeyboardInterrupt))
                if others is not None:
                    raise others from None
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
