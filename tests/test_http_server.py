"""codexgw/api/server.py: hypercorn's worker whose connections send each chunk straight to the socket.

Real sockets on 127.0.0.1; a bare ASGI app streams chunks to a raw client.
"""

from __future__ import annotations

import socket

import pytest
import trio
from hypercorn.config import Config

from codexgw.api.server import BODY_WRITER, Connection, serve_http


class Steps(trio.abc.Instrument):
    """Counts the scheduler steps of tasks whose name contains ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.name in task.name:
            self.steps += 1


async def lifespan(receive, send) -> None:
    """Answer the ASGI lifespan messages until the shutdown."""
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


def streaming_app(chunks: list[bytes], finished: list[str], *, writer: bool = False):
    """An app streaming ``chunks``, as ASGI messages or (``writer``) through the connection's
    :class:`BodyWriter` when it offers one; ``finished`` gets ``"done"`` (and, with ``writer``,
    ``"writer"`` or ``"asgi"``: which way the chunks went)."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        connection = scope["extensions"].get(BODY_WRITER) if writer else None
        body_writer = connection.body_writer() if connection is not None else None
        if writer:
            finished.append("writer" if body_writer is not None else "asgi")
        for chunk in chunks:
            if body_writer is not None:
                await body_writer.send(chunk)
            else:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        finished.append("done")

    return app


def config(**settings: object) -> Config:
    c = Config()
    c.bind = ["127.0.0.1:0"]
    c.accesslog = None
    c.graceful_timeout = 1
    for name, value in settings.items():
        setattr(c, name, value)
    return c


def dechunk(raw: bytes) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    out = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out, body = out + body[:size], body[size + 2 :]


async def ended(finished: list[str]) -> None:
    """Wait for the app to have returned (the client can see the body's end first)."""
    with trio.fail_after(10):
        while "done" not in finished:
            await trio.sleep(0.01)


async def serving(nursery: trio.Nursery, app, shutdown: trio.Event, **settings: object) -> int:
    urls = await nursery.start(lambda task_status: serve_http(app, config(**settings), shutdown_trigger=shutdown.wait, task_status=task_status))
    return int(urls[0].rsplit(":", 1)[1])


async def fetch(
    port: int, *, read_delay_s: float = 0.0, rcvbuf: int | None = None, request: bytes | None = None
) -> bytes:
    sock = trio.socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await sock.connect(("127.0.0.1", port))
    await sock.send(request or b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = b""
    while data := await sock.recv(65536):
        raw += data
        if read_delay_s:
            await trio.sleep(read_delay_s)
    sock.close()
    return raw


async def test_small_chunks_go_out_without_a_scheduler_round_each(nursery: trio.Nursery) -> None:
    """200 chunks to a client that reads at once: the app's task takes far fewer steps than chunks
    (hypercorn's own send path takes at least two scheduler rounds per chunk: its lock and its send)."""
    chunks = [b"data: %d\n\n" % i for i in range(200)]
    finished: list[str] = []
    shutdown = trio.Event()
    steps = Steps("task_group._handle")  # hypercorn runs the ASGI app in a task of this name
    port = await serving(nursery, streaming_app(chunks, finished), shutdown)
    trio.lowlevel.add_instrument(steps)
    try:
        raw = await fetch(port)
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert dechunk(raw) == b"".join(chunks)
    await ended(finished)
    assert finished == ["done"]
    assert 0 < steps.steps < 50, steps.steps
    shutdown.set()


async def test_what_the_socket_does_not_take_waits_for_it_and_keeps_the_order(nursery: trio.Nursery) -> None:
    """8 MiB in 256 KiB chunks to a slow reader with a small receive buffer: the rest of a partial
    send goes hypercorn's way (waiting for the socket), every byte arrives once, in order."""
    chunks = [bytes([65 + i % 26]) * (256 * 1024) for i in range(32)]
    finished: list[str] = []
    shutdown = trio.Event()
    port = await serving(nursery, streaming_app(chunks, finished), shutdown)
    raw = await fetch(port, read_delay_s=0.001, rcvbuf=16384)
    assert dechunk(raw) == b"".join(chunks)
    await ended(finished)
    assert finished == ["done"]
    shutdown.set()


async def test_a_client_that_leaves_mid_stream_does_not_break_the_server(nursery: trio.Nursery) -> None:
    chunks = [b"x" * 65536] * 400  # 25 MiB: far more than the socket buffers hold
    finished: list[str] = []
    shutdown = trio.Event()
    port = await serving(nursery, streaming_app(chunks, finished), shutdown)
    sock = trio.socket.socket()
    await sock.connect(("127.0.0.1", port))
    await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    sock.close()
    await ended(finished)  # the app runs to its end (hypercorn drops what a gone client cannot take)
    small: list[str] = []
    port2 = await serving(nursery, streaming_app([b"ok"], small), trio.Event())
    assert dechunk(await fetch(port)) == b"x" * 65536 * 400
    assert dechunk(await fetch(port2)) == b"ok"
    shutdown.set()


@pytest.mark.parametrize("tls", [False, True])
def test_only_plain_tcp_connections_take_the_direct_send(tls: bool) -> None:
    """TLS (trio.SSLStream) keeps hypercorn's path: the bytes must go through the TLS layer."""
    a, b = socket.socketpair()
    a.setblocking(False)
    stream: object = trio.SocketStream(trio.socket.from_stdlib_socket(a))
    if tls:
        import ssl

        stream = trio.SSLStream(stream, ssl.create_default_context(), server_side=False)  # type: ignore[arg-type]
    connection = Connection(None, config(), None, {}, stream)  # type: ignore[arg-type]
    assert (connection._raw is not None) is (not tls)
    a.close()
    b.close()


async def test_a_body_writer_frames_the_chunks_and_the_connection_serves_the_next_request(
    nursery: trio.Nursery,
) -> None:
    """Chunks through the BodyWriter arrive framed as h11 would frame them; the end goes the ASGI
    way, and the same keep-alive connection then answers a second request (h11's state is right)."""
    chunks = [b"data: %d\n\n" % i for i in range(200)] + [b"", b"x" * 70000]
    finished: list[str] = []
    shutdown = trio.Event()
    steps = Steps("task_group._handle")
    port = await serving(nursery, streaming_app(chunks, finished, writer=True), shutdown)
    sock = trio.socket.socket()
    await sock.connect(("127.0.0.1", port))
    trio.lowlevel.add_instrument(steps)
    answers = []
    try:
        for _ in range(2):
            await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            raw = b""
            while not raw.endswith(b"\r\n0\r\n\r\n"):
                data = await sock.recv(65536)
                assert data, "the connection closed"
                raw += data
            answers.append(raw)
    finally:
        trio.lowlevel.remove_instrument(steps)
        sock.close()
    for raw in answers:
        assert dechunk(raw) == b"".join(chunks)
        assert raw.count(b"\r\n0\r\n\r\n") == 1  # an empty chunk is not sent: it would end the body
    await ended(finished)
    assert finished[:2] == ["writer", "done"] and finished[2] == "writer"
    assert 0 < steps.steps < 60, steps.steps  # both answers: no scheduler round per chunk
    shutdown.set()


async def test_a_body_writer_keeps_the_order_when_the_socket_is_slow(nursery: trio.Nursery) -> None:
    chunks = [bytes([65 + i % 26]) * (256 * 1024) for i in range(32)]
    finished: list[str] = []
    shutdown = trio.Event()
    port = await serving(nursery, streaming_app(chunks, finished, writer=True), shutdown)
    raw = await fetch(port, read_delay_s=0.001, rcvbuf=16384)
    assert dechunk(raw) == b"".join(chunks)
    await ended(finished)
    assert finished == ["writer", "done"]
    shutdown.set()


async def test_a_body_writer_drops_what_a_gone_client_cannot_take(nursery: trio.Nursery) -> None:
    """The client resets mid-stream: the writer's sends raise nothing, the app runs to its end,
    and the server goes on serving."""
    chunks = [b"x" * 65536] * 400
    finished: list[str] = []
    shutdown = trio.Event()
    port = await serving(nursery, streaming_app(chunks, finished, writer=True), shutdown)
    sock = trio.socket.socket()
    await sock.connect(("127.0.0.1", port))
    await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    await ended(finished)
    assert finished == ["writer", "done"]
    assert dechunk(await fetch(port)) == b"x" * 65536 * 400
    shutdown.set()


async def test_an_http_10_client_gets_no_body_writer(nursery: trio.Nursery) -> None:
    """HTTP/1.0 has no chunked framing (h11 writes the body raw and closes): no writer, the ASGI way."""
    finished: list[str] = []
    shutdown = trio.Event()
    port = await serving(nursery, streaming_app([b"a", b"b"], finished, writer=True), shutdown)
    raw = await fetch(port, request=b"GET / HTTP/1.0\r\n\r\n")
    assert raw.endswith(b"\r\n\r\nab")
    await ended(finished)
    assert finished == ["asgi", "done"]
    shutdown.set()


def test_a_connection_offers_no_body_writer_before_the_head_or_over_h2() -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    connection = Connection(None, config(), None, {}, trio.SocketStream(trio.socket.from_stdlib_socket(a)))  # type: ignore[arg-type]
    assert connection.body_writer() is None  # no protocol yet
    connection.protocol = type("Wrapper", (), {"protocol": object()})()  # type: ignore[assignment]
    assert connection.body_writer() is None  # not hypercorn's H11Protocol (h2, a WebSocket)
    a.close()
    b.close()


def recording(app, connections: list[Connection]):
    """``app``, recording the connection each HTTP request's scope offers."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            connections.append(scope["extensions"][BODY_WRITER])
        await app(scope, receive, send)

    return wrapped


async def tls_serving(
    nursery: trio.Nursery, tmp_path, chunks: list[bytes], finished: list[str], connections: list[Connection]
):
    """A TLS server (a fresh self-signed certificate) whose app streams ``chunks`` through the
    BodyWriter, recording its connections: ``(port, a client SSLContext trusting it, the shutdown
    event)``."""
    import ssl

    from tests.tls_pair import write_pem

    cert, key = write_pem(tmp_path)
    app = recording(streaming_app(chunks, finished, writer=True), connections)
    shutdown = trio.Event()
    port = await serving(nursery, app, shutdown, certfile=str(cert), keyfile=str(key))
    return port, ssl.create_default_context(cafile=str(cert)), shutdown


async def test_a_tls_connection_offers_a_body_writer_too(nursery: trio.Nursery, tmp_path) -> None:
    """Over TLS the writer's chunks are encrypted with the connection's own SSLObject and sent
    straight to the socket when nothing else is sending (TlsWriter): the answer arrives whole
    and decrypts, and the keep-alive connection answers a second request."""
    chunks = [b"data: %d\n\n" % i for i in range(100)] + [b"y" * 100000]
    finished: list[str] = []
    connections: list[Connection] = []
    port, context, shutdown = await tls_serving(nursery, tmp_path, chunks, finished, connections)
    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=context)
    for _ in range(2):
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while not raw.endswith(b"\r\n0\r\n\r\n"):
            raw += await stream.receive_some(65536)
        assert dechunk(raw) == b"".join(chunks)
    await stream.aclose()
    await ended(finished)
    assert finished[:2] == ["writer", "done"]
    assert connections[0]._tls is not None and connections[0].direct_sends >= 100  # not through SSLStream.send_all
    shutdown.set()


async def test_tls_records_a_slow_client_cannot_take_at_once_keep_their_order(nursery: trio.Nursery, tmp_path) -> None:
    """8 MiB in 256 KiB chunks over TLS to a client that reads slowly with a small receive buffer:
    the records of a partial send go out under the SSLStream's own send lock, hypercorn's sends
    queue behind them, and every byte decrypts once, in order."""
    chunks = [bytes([65 + i % 26]) * (256 * 1024) for i in range(32)]
    finished: list[str] = []
    connections: list[Connection] = []
    port, context, shutdown = await tls_serving(nursery, tmp_path, chunks, finished, connections)
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SSLStream(trio.SocketStream(sock), context, server_hostname="127.0.0.1")
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = b""
    while not raw.endswith(b"\r\n0\r\n\r\n"):
        raw += await stream.receive_some(65536)
        await trio.sleep(0.0005)
    assert dechunk(raw) == b"".join(chunks)
    await stream.aclose()
    await ended(finished)
    assert finished == ["writer", "done"]
    assert connections[0].direct_sends < len(chunks)  # some chunks' records went out in parts
    shutdown.set()


async def test_a_client_that_closes_between_requests_is_let_go_at_once(nursery: trio.Nursery) -> None:
    """After a keep-alive request, the client closes: the server closes its side now, not when the
    keep-alive timer (75 s here, as ``serve`` sets it) runs out. hypercorn 0.18 left that timer
    running after the read loop saw the end, and the connection's task group waited for it: the
    socket sat in CLOSE-WAIT, holding a file descriptor, for up to 75 s."""
    finished: list[str] = []
    shutdown = trio.Event()
    port = await serving(nursery, streaming_app([b"hello"], finished), shutdown, keep_alive_timeout=75)
    sock = trio.socket.socket()
    await sock.connect(("127.0.0.1", port))
    await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = b""
    while not raw.endswith(b"0\r\n\r\n"):
        raw += await sock.recv(65536)
    assert dechunk(raw) == b"hello"
    await ended(finished)
    sock.shutdown(socket.SHUT_WR)  # the client's end; the server may still write
    with trio.fail_after(5):
        assert await sock.recv(65536) == b""  # the server closed its side
    sock.close()
    shutdown.set()


async def test_a_body_writers_send_is_not_cut_by_a_cancel_scope_around_it(nursery: trio.Nursery) -> None:
    """The pushed relay writes inside its read loop's cancel scope (``UpstreamStream.pump``): a
    deadline that passes while a write waits for a slow socket must not cut that write (hypercorn's
    lock wait and send, shielded), so every chunk arrives whole and in order; the scope's
    cancellation lands at the app's next checkpoint of its own."""
    chunks = [bytes([65 + i % 26]) * (256 * 1024) for i in range(8)]
    finished: list[str] = []
    shutdown = trio.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        body_writer = scope["extensions"][BODY_WRITER].body_writer()
        with trio.move_on_after(0.01) as cut:
            for chunk in chunks:
                await body_writer.send(chunk)
            finished.append("written")
            await trio.sleep(0)  # the app's own checkpoint: here the passed deadline lands
        finished.append(f"cancelled={cut.cancelled_caught}")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        finished.append("done")

    port = await serving(nursery, app, shutdown)
    raw = await fetch(port, read_delay_s=0.002, rcvbuf=16384)
    assert dechunk(raw) == b"".join(chunks)
    await ended(finished)
    assert finished == ["written", "cancelled=True", "done"]
    shutdown.set()
