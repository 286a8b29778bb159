"""The upstream body read straight off its socket (codexgw/client/direct.py, UpstreamStream.paced_batches).

A raw loopback HTTP/1.1 server (over plain TCP and over TLS: every test runs on both) sends exactly the bytes each test scripts (chunk boundaries where the
test wants them, silences until the test lets it go on) and records the connections it accepted and
which of them the client closed. No timing is asserted: silences are events the test controls.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import trio

from codexgw.client.direct import DirectBody
from codexgw.client.sender import UpstreamSender
from codexgw.client.transport import UPSTREAM_LIMITS, ShardedTransport, new_http_client
from codexgw.errors import UpstreamConnectionError
from codexgw.upstream.stream import UpstreamStream
from tests.tls_pair import client_context, server_context

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def sse(n: int) -> bytes:
    data = json.dumps({"type": "response.output_text.delta", "delta": f"w{n}"})
    return f"event: response.output_text.delta\ndata: {data}\n\n".encode()


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


END = b"0\r\n\r\n"
Script = Callable[[trio.abc.Stream], Awaitable[None]]


@dataclass
class Upstream:
    """Accepts connections; each request is answered by the next script of ``scripts``."""

    scripts: list[Script] = field(default_factory=list)
    accepted: int = 0
    closed_by_client: int = 0
    port: int = 0
    scheme: str = "http"

    async def handle(self, conn: trio.abc.Stream) -> None:
        self.accepted += 1
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = await conn.receive_some(65536)
                    if not data:
                        self.closed_by_client += 1
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(buf) < length:
                    buf += await conn.receive_some(65536)
                buf = buf[length:]
                await self.scripts.pop(0)(conn)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed_by_client += 1


@pytest.fixture(params=["http", "https"])
def scheme(request: pytest.FixtureRequest) -> str:
    """Every test runs over plain TCP and over TLS (the real backend is HTTPS: the reader takes
    TLS plaintext through :class:`codexgw.client.direct_tls.TlsReceiver`)."""
    return request.param


@pytest.fixture
async def upstream(nursery: trio.Nursery, scheme: str) -> Upstream:
    up = Upstream(scheme=scheme)
    if scheme == "https":
        serve = functools.partial(trio.serve_ssl_over_tcp, up.handle, 0, server_context(), host="127.0.0.1")
    else:
        serve = functools.partial(trio.serve_tcp, up.handle, 0, host="127.0.0.1")
    listeners = await nursery.start(serve)
    inner = listeners[0].transport_listener if scheme == "https" else listeners[0]
    up.port = inner.socket.getsockname()[1]
    return up


@pytest.fixture
async def sender(scheme: str) -> UpstreamSender:
    sharded = ShardedTransport(
        shards=1,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=10),
        verify=client_context() if scheme == "https" else True,
    )
    client = new_http_client(sharded=sharded)
    yield UpstreamSender(client, sharded)
    await client.aclose()


async def open_stream(sender: UpstreamSender, up: Upstream) -> UpstreamStream:
    url = httpx.URL(f"{up.scheme}://127.0.0.1:{up.port}/codex/responses")
    response = await sender.send(url, content=b"{}", headers={})
    stream = UpstreamStream(account=None, response=response, headers={}, model=None, sent_at=0.0)  # type: ignore[arg-type]
    assert stream.direct
    return stream


def whole(events: int) -> Script:
    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + b"".join(chunk(sse(i)) for i in range(events)) + END)

    return script


def first_then_open() -> Script:
    """The first event, then the answer goes on (silent) until the client closes."""

    async def script(conn: trio.abc.Stream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)))
        while await conn.receive_some(65536):
            pass

    return script


async def read_all(direct: DirectBody) -> list[bytes]:
    """What ``direct`` gives to the body's end, read as the relay does (waits of at most 5 s)."""
    got = []
    with trio.fail_after(10):
        while not direct.done:
            if data := direct.read_ready():
                got.append(data)
            else:
                await direct.wait(trio.current_time() + 5)
    return got


def deltas(batches: list) -> list[str]:
    return [json.loads(event.data)["delta"] for batch in batches if batch for event, _raw in batch]


async def test_each_event_alone_and_a_heartbeat_on_silence(upstream: Upstream, sender: UpstreamSender) -> None:
    go = trio.Event()

    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)))
        await go.wait()  # silent until the reader reported the silence
        await conn.send_all(chunk(sse(1)) + END)

    upstream.scripts.append(script)
    stream = await open_stream(sender, upstream)
    seen: list = []
    with trio.fail_after(10):
        async for batch in stream.paced_batches(0.01):
            seen.append(batch)
            if batch is None:
                go.set()
    await stream.aclose()
    assert seen[0] is not None and deltas(seen[:1]) == ["w0"]
    assert None in seen  # the silence became a heartbeat (a deadline on the wait)
    assert deltas(seen) == ["w0", "w1"] and seen[-1] is not None and len(seen[-1]) == 1


async def test_chunk_boundaries_anywhere_and_one_connection_for_all(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    body = HEAD + chunk(sse(0) + sse(1)[:7]) + chunk(sse(1)[7:]) + chunk(sse(2)) + END
    for offset in range(1, len(body)):

        async def script(conn: trio.SocketStream, offset: int = offset) -> None:
            await conn.send_all(body[:offset])
            await trio.sleep(0.001)  # (likely) a separate read; correctness must not depend on it
            await conn.send_all(body[offset:])

        upstream.scripts.append(script)
    with trio.fail_after(60):
        for _ in range(1, len(body)):
            stream = await open_stream(sender, upstream)
            got = [b async for b in stream.batches()]
            await stream.aclose()
            assert deltas(got) == ["w0", "w1", "w2"]
    assert upstream.accepted == 1  # every body read to its end returned the connection to the pool


async def test_an_answer_larger_than_a_read_in_one_write(upstream: Upstream, sender: UpstreamSender) -> None:
    """About 400 KB sent at once: many reads of 64 KiB (over TLS, many 16 KiB records per read, and
    records cut across reads), all decoded, and the connection reused."""
    events = [sse(i) + b": " + b"x" * 1000 + b"\n\n" for i in range(400)]

    async def script(conn: trio.abc.Stream) -> None:
        await conn.send_all(HEAD + b"".join(chunk(e) for e in events) + END)

    upstream.scripts += [script, whole(1)]
    for want in (events, [sse(0)]):
        stream = await open_stream(sender, upstream)
        direct = stream._direct
        assert isinstance(direct, DirectBody)
        got = await read_all(direct)
        await stream.aclose()
        assert b"".join(got) == b"".join(want)
    assert upstream.accepted == 1


async def test_streams_one_after_another_reuse_one_connection(upstream: Upstream, sender: UpstreamSender) -> None:
    upstream.scripts += [whole(3), whole(2), whole(1)]
    for n in (3, 2, 1):
        stream = await open_stream(sender, upstream)
        got = [b async for b in stream.paced_batches(5.0)]
        await stream.aclose()
        assert deltas(got) == [f"w{i}" for i in range(n)]
    assert upstream.accepted == 1 and upstream.closed_by_client == 0


async def test_an_idle_connection_is_kept_for_the_next_turn(
    upstream: Upstream, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's pools keep an idle connection 90 s (UPSTREAM_LIMITS), not httpx's 5 s: an
    agent's next turn after a minute of tool calls reuses it (no new TCP and TLS handshake); past
    90 s it is dropped and the next request connects again. httpcore's expiry clock is shifted."""
    import httpcore._async.http11 as http11

    shift = [0.0]
    real = http11.time.monotonic
    monkeypatch.setattr(http11, "time", type("Clock", (), {"monotonic": staticmethod(lambda: real() + shift[0])}))
    sharded = ShardedTransport(shards=1, limits=UPSTREAM_LIMITS, verify=client_context() if scheme == "https" else True)
    client = new_http_client(sharded=sharded)
    sender = UpstreamSender(client, sharded)
    try:
        upstream.scripts += [whole(1), whole(1), whole(1)]
        accepted = []
        for idle_s in (0.0, 60.0, 91.0):
            shift[0] += idle_s
            stream = await open_stream(sender, upstream)
            assert deltas([b async for b in stream.paced_batches(5.0)]) == ["w0"]
            await stream.aclose()
            accepted.append(upstream.accepted)
        assert accepted == [1, 1, 2]
    finally:
        await client.aclose()


async def test_an_early_stop_closes_the_connection(upstream: Upstream, sender: UpstreamSender) -> None:
    script = first_then_open()

    upstream.scripts += [script, whole(1)]
    stream = await open_stream(sender, upstream)
    batches = stream.paced_batches(5.0)
    assert deltas([await batches.__anext__()]) == ["w0"]
    await batches.aclose()
    await stream.aclose()
    with trio.fail_after(10):
        while upstream.closed_by_client < 1:
            await trio.sleep(0.001)
    stream = await open_stream(sender, upstream)  # the next request needs a new connection
    assert deltas([b async for b in stream.batches()]) == ["w0"]
    await stream.aclose()
    assert upstream.accepted == 2


async def test_a_client_that_leaves_mid_stream_closes_the_connection(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    script = first_then_open()

    upstream.scripts.append(script)
    stream = await open_stream(sender, upstream)
    first = trio.Event()
    with trio.move_on_after(10) as outer:

        async def relay() -> None:  # as codexgw.upstream.relay: the generator, then the close
            try:
                async for _batch in stream.paced_batches(300.0):
                    first.set()
            finally:
                with trio.CancelScope(shield=True):
                    await stream.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay)
            await first.wait()
            nursery.cancel_scope.cancel()  # the client went away while the reader waited
        while upstream.closed_by_client < 1:
            await trio.sleep(0.001)
    assert not outer.cancelled_caught


async def test_a_cancelled_wait_leaves_the_reader_usable(upstream: Upstream, sender: UpstreamSender) -> None:
    go = trio.Event()

    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)))
        await go.wait()
        await conn.send_all(chunk(sse(1)) + END)

    upstream.scripts.append(script)
    stream = await open_stream(sender, upstream)
    direct = stream._direct
    assert isinstance(direct, DirectBody)
    got = []
    with trio.fail_after(10):
        while not (data := direct.read_ready()):
            await direct.wait(trio.current_time() + 5)
        got.append(data)
        assert direct.read_ready() == b""  # nothing more yet
        with trio.CancelScope() as scope:
            scope.cancel()
            await direct.wait(trio.current_time() + 5)  # cancelled
        assert not await direct.wait(trio.current_time())  # a deadline already passed: not readable
        go.set()
        while not direct.done:
            if data := direct.read_ready():
                got.append(data)
            elif not direct.done:
                await direct.wait(trio.current_time() + 5)
    await stream.aclose()
    assert b"".join(got) == sse(0) + sse(1)
    upstream.scripts.append(whole(1))
    stream = await open_stream(sender, upstream)  # the connection went back to the pool
    await stream.aclose()
    assert upstream.accepted == 1


async def test_a_body_cut_short_is_an_upstream_error(upstream: Upstream, sender: UpstreamSender) -> None:
    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)) + b"40\r\nevent: x")
        await conn.aclose()

    upstream.scripts.append(script)
    stream = await open_stream(sender, upstream)
    with pytest.raises(UpstreamConnectionError), trio.fail_after(10):
        async for _batch in stream.paced_batches(5.0):
            pass
    await stream.aclose()


async def test_an_answer_collected_until_done_returns_the_connection(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    """Chat without ``stream`` stops reading at ``response.completed`` (``collect(until=)``): the
    body's end already arrived with it, so closing must still leave the connection to the pool."""
    from codexgw.upstream.relay import collect

    upstream.scripts += [whole(3), whole(1)]
    for _ in range(2):
        stream = await open_stream(sender, upstream)
        seen: list[dict] = []
        await collect(stream, seen.append, until=seen.__len__)  # stops after the first event
        await stream.aclose()
        assert seen[0]["delta"] == "w0"
    assert upstream.accepted == 1 and upstream.closed_by_client == 0


async def test_a_coalescing_window_puts_events_that_come_within_it_in_one_batch(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)))
        await trio.sleep(0.001)
        await conn.send_all(chunk(sse(1)))
        await trio.sleep(0.001)
        await conn.send_all(chunk(sse(2)) + END)

    upstream.scripts.append(script)
    stream = await open_stream(sender, upstream)
    with trio.fail_after(10):  # a 5 s window: the body's end closes it long before
        got = [b async for b in stream.paced_batches(30.0, coalesce_s=5.0)]
    await stream.aclose()
    assert len(got) == 1 and deltas(got) == ["w0", "w1", "w2"]


async def test_between_the_first_and_the_last_chunk_the_reader_decodes_the_chunks_itself(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    """Chunk extensions, upper-case hex and a trailer split in two reads: h11 hands over after the
    first read and takes the end back, and the connection is reused."""
    go = trio.Event()

    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)))
        await go.wait()
        one = sse(1)
        await conn.send_all(b"%X;name=value\r\n%s\r\n" % (len(one), one))
        await trio.sleep(0.001)
        await conn.send_all(chunk(sse(2)) + b"0\r\nx-trailer: 1\r\n")
        await trio.sleep(0.001)
        await conn.send_all(b"\r\n")

    upstream.scripts += [script, whole(1)]
    stream = await open_stream(sender, upstream)
    direct = stream._direct
    assert isinstance(direct, DirectBody)
    got = []
    with trio.fail_after(10):
        batches = stream.paced_batches(5.0)
        got.append(await batches.__anext__())
        assert direct._own  # h11 stands between two chunks: the reader took over
        go.set()
        got += [b async for b in batches]
    await stream.aclose()
    assert deltas(got) == ["w0", "w1", "w2"] and direct.done and not direct._own
    stream = await open_stream(sender, upstream)
    assert deltas([b async for b in stream.batches()]) == ["w0"]
    await stream.aclose()
    assert upstream.accepted == 1 and upstream.closed_by_client == 0


@pytest.mark.parametrize("framing", [b"zz\r\n", b"1_0\r\n", b"5\r\nabcdeXY", b"+5\r\n"], ids=["not-hex", "underscore", "bad-footer", "sign"])
async def test_a_malformed_chunk_is_an_upstream_error_and_the_connection_is_not_reused(
    upstream: Upstream, sender: UpstreamSender, framing: bytes
) -> None:
    go = trio.Event()

    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)))
        await go.wait()
        await conn.send_all(framing + b"\r\n" + END)
        while await conn.receive_some(65536):
            pass

    upstream.scripts += [script, whole(1)]
    stream = await open_stream(sender, upstream)
    with pytest.raises(UpstreamConnectionError), trio.fail_after(10):
        async for _batch in stream.paced_batches(5.0):
            go.set()
    await stream.aclose()
    stream = await open_stream(sender, upstream)
    assert deltas([b async for b in stream.batches()]) == ["w0"]
    await stream.aclose()
    assert upstream.accepted == 2


async def test_an_end_that_came_after_the_last_read_still_returns_the_connection(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    """The reader stopped asking the socket after a short read; the end arrived later, before the
    close: closing reads it, and the connection goes back to the pool."""
    from codexgw.upstream.relay import collect

    arrived = trio.Event()

    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD)
        await trio.sleep(0.05)  # the first event comes in a read of the reader's own
        await conn.send_all(chunk(sse(0)))
        await trio.sleep(0.05)
        await conn.send_all(chunk(sse(1)) + END)
        arrived.set()

    upstream.scripts += [script, whole(1)]
    stream = await open_stream(sender, upstream)
    seen: list[dict] = []
    with trio.fail_after(10):
        await collect(stream, seen.append, until=seen.__len__)  # stops after the first event
        await arrived.wait()
        await trio.sleep(0.05)  # the end is in the socket now, unread
    await stream.aclose()
    stream = await open_stream(sender, upstream)
    await stream.aclose()
    assert seen[0]["delta"] == "w0" and upstream.accepted == 1


async def test_chunks_that_came_with_the_head_are_decoded_by_the_reader_not_h11(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    """httpcore's read of the head also brought three chunks: the first read_ready takes them from
    h11's buffer (h11's ``next_event`` is not called: it would decode them one call per chunk), then
    the rest arrives and the connection is reused."""
    go = trio.Event()

    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + b"".join(chunk(sse(i)) for i in range(3)))
        await go.wait()
        await conn.send_all(chunk(sse(3)) + END)

    upstream.scripts += [script, whole(1)]
    stream = await open_stream(sender, upstream)
    direct = stream._direct
    assert isinstance(direct, DirectBody) and direct._h11.trailing_data[0]  # h11 holds body bytes
    events = 0
    next_event = direct._h11.next_event

    def counted() -> object:
        nonlocal events
        events += 1
        return next_event()

    direct._h11.next_event = counted  # type: ignore[method-assign]
    first = direct.read_ready()
    assert events == 0  # h11 decoded none of the three chunks
    assert first == b"".join(sse(i) for i in range(3))
    assert direct._own and direct._handed == b"" and direct._h11.trailing_data == (b"", False)
    go.set()
    got = [first, *await read_all(direct)]
    await stream.aclose()
    assert b"".join(got) == b"".join(sse(i) for i in range(4))
    stream = await open_stream(sender, upstream)
    await stream.aclose()
    assert upstream.accepted == 1


async def test_peek_decodes_a_burst_only_up_to_its_first_output_event(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    """A short answer that came in one write: peek stops decoding at the first content, past the
    item's opening (the first delta: its bytes go
    to the client first, issue 17's added TTFB); the rest is decoded by the next read, all of it,
    in order, for both readers of the stream."""
    created = b'event: response.created\ndata: {"type": "response.created"}\n\n'
    created += b'event: response.output_item.added\ndata: {"type": "response.output_item.added"}\n\n'

    async def script(conn: trio.abc.Stream) -> None:
        await conn.send_all(HEAD + chunk(created + b"".join(sse(i) for i in range(5))) + END)

    upstream.scripts += [script, script]
    for paced in (False, True):
        stream = await open_stream(sender, upstream)
        first = await stream.peek()
        assert first is not None and first[0] == "response.output_item.added"  # what failover looks at
        kinds = ["response.created", "response.output_item.added", "response.output_text.delta"]
        assert [event.event for event, _raw in stream._pending] == kinds  # up to the first content
        with trio.fail_after(10):
            got = [b async for b in (stream.paced_batches(5.0) if paced else stream.batches())]
        await stream.aclose()
        assert deltas([got[0][2:], *got[1:]]) == [f"w{i}" for i in range(5)]
        assert len(got[0]) == 3 and got[1] is not None and len(got[1]) == 4  # the rest: one batch, one write
    assert upstream.accepted == 1


# UpstreamStream.pump: the same reading pushed to a consumer, one cancel scope per heartbeat
# interval (the relay's direct path to an HTTP/1.1 client, codexgw.upstream.relay.Relay.push).


async def pumped(
    stream: UpstreamStream, interval_s: float, on_batch: Callable[[list | None], object] | None = None, **kw: object
) -> list:
    """Every batch ``stream.pump`` gives (``None`` for a heartbeat); ``on_batch`` may stop it (True)."""
    seen: list = []

    async def consume(batch: list | None) -> bool:
        seen.append(batch)
        return bool(on_batch(batch)) if on_batch is not None else False

    with trio.fail_after(10):
        await stream.pump(consume, interval_s, **kw)  # type: ignore[arg-type]
    return seen


async def test_pump_gives_each_event_and_a_heartbeat_on_silence(upstream: Upstream, sender: UpstreamSender) -> None:
    go = trio.Event()

    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)))
        await go.wait()  # silent until the reader reported the silence
        await conn.send_all(chunk(sse(1)) + END)

    upstream.scripts += [script, whole(2)]
    stream = await open_stream(sender, upstream)
    seen = await pumped(stream, 0.01, lambda batch: go.set() if batch is None else None)
    await stream.aclose()
    assert seen[0] is not None and None in seen and deltas(seen) == ["w0", "w1"]
    stream = await open_stream(sender, upstream)  # read to its end: the connection was returned
    assert deltas(await pumped(stream, 5.0)) == ["w0", "w1"]
    await stream.aclose()
    assert upstream.accepted == 1 and upstream.closed_by_client == 0


async def test_pump_gives_no_heartbeat_while_data_keeps_coming_past_the_interval(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    """Events 2 ms apart for about 0.6 s against a 0.25 s interval: the scope's deadline passes
    while data flows (at least twice), and a new scope starts from the latest data: no heartbeat."""

    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD)
        for i in range(300):
            await conn.send_all(chunk(sse(i)))
            await trio.sleep(0.002)
        await conn.send_all(END)

    upstream.scripts.append(script)
    stream = await open_stream(sender, upstream)
    start = trio.current_time()
    seen = await pumped(stream, 0.25)
    await stream.aclose()
    assert trio.current_time() - start > 0.5  # the deadline passed during the answer
    assert None not in seen and deltas(seen) == [f"w{i}" for i in range(300)]


async def test_pump_stops_when_the_consumer_says_so_and_the_connection_is_closed(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    script = first_then_open()

    upstream.scripts += [script, whole(1)]
    stream = await open_stream(sender, upstream)
    assert deltas(await pumped(stream, 5.0, lambda batch: True)) == ["w0"]
    await stream.aclose()
    with trio.fail_after(10):
        while upstream.closed_by_client < 1:
            await trio.sleep(0.001)
    stream = await open_stream(sender, upstream)
    assert deltas(await pumped(stream, 5.0)) == ["w0"]
    await stream.aclose()
    assert upstream.accepted == 2


async def test_pump_silence_past_the_read_timeout_is_an_upstream_error_after_heartbeats(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    script = first_then_open()

    upstream.scripts.append(script)
    stream = await open_stream(sender, upstream)
    stream._read_timeout_s = 0.2
    seen: list = []
    with pytest.raises(UpstreamConnectionError, match="timed out"):
        await pumped(stream, 0.05, seen.append)
    await stream.aclose()
    assert deltas(seen) == ["w0"] and seen.count(None) >= 2  # heartbeats first, then the timeout


async def test_pump_the_drains_cut_ends_it_and_a_shielded_consumer_is_not_cut(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    """The consumer runs inside the loop's scope: its shielded wait (a write to a slow client)
    outlives the heartbeat's deadline and the cut, and the batch is never lost; the cut then ends
    the pump with ServerShuttingDownError at the next wait."""
    from codexgw.errors import ServerShuttingDownError
    from codexgw.upstream.drain import Drain

    script = first_then_open()

    upstream.scripts.append(script)
    stream = await open_stream(sender, upstream)
    drain = Drain(grace_s=30)
    seen: list = []

    async def consume(batch: list | None) -> bool:
        seen.append(batch)
        with trio.CancelScope(shield=True):
            await trio.sleep(0.1)  # past the 0.02 s heartbeat deadline
            drain.cut_now()
        seen.append("written")
        return False

    with pytest.raises(ServerShuttingDownError), trio.fail_after(10):
        await stream.pump(consume, 0.02, cut=drain)
    await stream.aclose()
    assert deltas(seen[:1]) == ["w0"] and seen[1] == "written" and len(seen) == 2


async def test_pump_coalesces_within_its_window_and_a_cut_body_is_an_error(
    upstream: Upstream, sender: UpstreamSender
) -> None:
    async def script(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)))
        await trio.sleep(0.001)
        await conn.send_all(chunk(sse(1)))
        await trio.sleep(0.001)
        await conn.send_all(chunk(sse(2)) + END)

    async def cut_short(conn: trio.SocketStream) -> None:
        await conn.send_all(HEAD + chunk(sse(0)) + b"40\r\nevent: x")
        await conn.aclose()

    upstream.scripts += [script, cut_short]
    stream = await open_stream(sender, upstream)
    got = await pumped(stream, 30.0, coalesce_s=5.0)  # the body's end closes the window
    await stream.aclose()
    assert len(got) == 1 and deltas(got) == ["w0", "w1", "w2"]
    stream = await open_stream(sender, upstream)
    with pytest.raises(UpstreamConnectionError):
        await pumped(stream, 5.0)
    await stream.aclose()
