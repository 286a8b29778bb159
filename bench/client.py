"""The bench's load client: raw HTTP/1.1 over asyncio, streaming SSE answers, one JSON result on stdout.

It parses only what it must (status line, chunked framing) and counts events as blank lines, so that
it stays far below the gateway's cost per event; its own CPU is reported with every result.

Scenarios (``python -m bench.client SCENARIO --port PORT --kind responses|chat|direct|ws ...``; ``ws``: the Responses WebSocket, see :class:`WSConn`):

* ``latency``: one request at a time on one keep-alive connection; TTFB (first body bytes) and total
  (``--gap-s``: the pause after each request, e.g. longer than a pool's idle expiry).
* ``throughput``: ``--concurrency`` keep-alive connections in a loop for ``--warmup-s`` + ``--duration-s``;
  completed streams per second in the measured window, and CPU of ``--pids`` over that window.
* ``hold``: ``--streams`` connections at once; time until every stream has its first event, streams
  lost, the RSS of ``--pids`` before and while all are open.
* ``paced``: ``--streams`` streams at once; each stream's duration against ``--ideal-s``, the CPU of
  ``--pids`` over the run and their RSS before and while every stream is open.

Every wait is bounded by ``--timeout-s``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
import zlib
from dataclasses import dataclass, field

from .procstat import cpu_seconds, rss_bytes

TERMINAL = {
    "responses": b"event: response.completed",
    "direct": b"event: response.completed",
    "chat": b"data: [DONE]",
    "ws": b'"response.completed"',
}


def request_bytes(kind: str, host: str, deltas: int, pace_ms: int, api_key: str | None = None) -> bytes:
    """The HTTP request for one streamed answer; the bench marker rides in ``prompt_cache_key``;
    ``api_key`` goes to codexgw as ``Authorization: Bearer`` (the keys scenario)."""
    marker = f"bench-d{deltas}-p{pace_ms}"
    if kind == "ws":  # the response.create message, sent once the WebSocket is open (see WSConn)
        create = {
            "type": "response.create",
            "model": "gpt-5.5",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Write a short answer."}]}],
            "prompt_cache_key": marker,
            "store": False,
        }
        return json.dumps(create, separators=(",", ":")).encode()
    headers = f"host: {host}\r\ncontent-type: application/json\r\naccept: text/event-stream\r\n"
    if api_key and kind != "direct":
        headers += f"authorization: Bearer {api_key}\r\n"
    if kind == "chat":
        path = "/v1/chat/completions"
        body = {
            "model": "gpt-5.5",
            "stream": True,
            "messages": [{"role": "user", "content": "Write a short answer."}],
            "prompt_cache_key": marker,
        }
    else:
        body = {
            "model": "gpt-5.5",
            "stream": True,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Write a short answer."}]}],
            "prompt_cache_key": marker,
            "store": False,  # as the Codex CLI sends it: nothing kept for previous_response_id
        }
        if kind == "direct":
            path = "/backend-api/codex/responses"
            body.update(instructions="You are a helpful assistant.")
            headers += f"authorization: Bearer bench\r\nsession_id: {marker}\r\n"
        else:
            path = "/v1/responses"
    payload = json.dumps(body, separators=(",", ":")).encode()
    return f"POST {path} HTTP/1.1\r\n{headers}content-length: {len(payload)}\r\n\r\n".encode() + payload


@dataclass
class Result:
    t_sent: float
    t_first: float | None = None
    t_end: float | None = None
    events: int = 0
    ok: bool = False
    error: str | None = None


class Conn(asyncio.Protocol):
    """One keep-alive connection; :meth:`send` returns a future resolved with the finished Result."""

    def __init__(self, terminal: bytes) -> None:
        self.terminal = terminal
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.result: Result | None = None
        self.future: asyncio.Future[Result] | None = None
        self.in_head = True
        self.reuse = True
        self.need = -1  # -1: reading a chunk-size line; else bytes of chunk data (+2 for CRLF) needed
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._finish(ok=False, error=f"connection lost ({type(exc).__name__ if exc else 'closed'})")
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, data: bytes) -> asyncio.Future[Result]:
        assert self.transport is not None and self.future is None
        self.future = asyncio.get_running_loop().create_future()
        self.result = Result(t_sent=time.perf_counter())
        self.in_head, self.need = True, -1
        self.transport.write(data)
        return self.future

    def _finish(self, *, ok: bool, error: str | None = None) -> None:
        if self.future is None or self.result is None:
            return
        self.result.t_end = time.perf_counter()
        self.result.ok = ok and error is None
        self.result.error = error
        future, self.future = self.future, None
        if not future.done():
            future.set_result(self.result)

    def data_received(self, data: bytes) -> None:
        if self.future is None:
            return
        buf = self.buf
        buf += data
        result = self.result
        assert result is not None
        if self.in_head:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[9:12])
            if status != b"200":
                self._finish(ok=False, error=f"HTTP {status.decode()}")
                if self.transport is not None:
                    self.transport.close()
                return
            head = bytes(buf[:end]).lower()
            self.reuse = b"connection: close" not in head
            if b"chunked" not in head:
                self._finish(ok=False, error="answer is not chunked")
                return
            del buf[: end + 4]
            self.in_head = False
        pos = 0
        while True:
            if self.need < 0:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if size == 0:
                    buf.clear()
                    self._finish(ok=result.ok)
                    return
                self.need = size + 2
            if len(buf) - pos < self.need:
                break
            chunk = buf[pos : pos + self.need - 2]
            pos += self.need
            self.need = -1
            if result.t_first is None:
                result.t_first = time.perf_counter()
            result.events += chunk.count(b"\n\n")
            if not result.ok and self.terminal in chunk:
                result.ok = True
        del buf[:pos]


class WSConn(Conn):
    """One WebSocket to ``/v1/responses`` speaking as the Codex CLI does (it offers
    permessage-deflate, sends one ``response.create`` text frame, reads one text frame per event
    until ``response.completed``, then drops the TCP connection); the same interface as
    :class:`Conn` (whose ``_finish`` it shares). Frames are parsed only as far as counting them needs (RFC 6455 §5.2); a
    compressed one (RSV1) is inflated (RFC 7692, context kept across messages)."""

    def __init__(self, host: str, terminal: bytes) -> None:
        super().__init__(terminal)
        self.host = host
        self.reuse = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.open = False
        self.inflate = zlib.decompressobj(-15)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(  # type: ignore[attr-defined]
            f"GET /v1/responses HTTP/1.1\r\nhost: {self.host}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
            "sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during the WebSocket handshake"))
        super().connection_lost(exc)

    def send(self, data: bytes) -> asyncio.Future[Result]:
        """Send ``data`` as one masked text frame (a zero mask: the payload as it is)."""
        assert self.transport is not None and self.future is None
        self.future = asyncio.get_running_loop().create_future()
        self.result = Result(t_sent=time.perf_counter())
        size = len(data)
        head = bytes((0x81, 0x80 | size)) if size < 126 else b"\x81\xfe" + size.to_bytes(2, "big")
        self.transport.write(head + b"\0\0\0\0" + data)
        return self.future

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if buf[9:12] != b"101":
                self.ready.set_exception(ConnectionError(f"upgrade refused: HTTP {bytes(buf[9:12]).decode()}"))
                return
            del buf[: end + 4]
            self.open = True
            self.ready.set_result(None)
        result = self.result
        pos = 0
        while len(buf) - pos >= 2:
            first, size = buf[pos], buf[pos + 1] & 0x7F
            start = pos + 2
            if size == 126:
                size, start = int.from_bytes(buf[start : start + 2], "big"), start + 2
            elif size == 127:
                size, start = int.from_bytes(buf[start : start + 8], "big"), start + 8
            if len(buf) < start + size:
                break
            payload = bytes(buf[start : start + size])
            pos = start + size
            if first & 0x0F != 1 or result is None:  # pings, pongs, a close: not events
                continue
            if first & 0x40:  # RSV1: a compressed message
                payload = self.inflate.decompress(payload + b"\x00\x00\xff\xff")
            if result.t_first is None:
                result.t_first = time.perf_counter()
            result.events += 1
            if self.terminal in payload[:64]:
                del buf[:pos]
                self._finish(ok=True)
                if self.transport is not None:
                    self.transport.close()  # as Codex goes away: no Close frame
                return
        del buf[:pos]


@dataclass
class Ctx:
    host: str
    port: int
    request: bytes
    terminal: bytes
    timeout_s: float
    results: list[Result] = field(default_factory=list)


async def connect(ctx: Ctx) -> Conn:
    loop = asyncio.get_running_loop()
    if ctx.terminal == TERMINAL["ws"]:
        _, ws = await loop.create_connection(lambda: WSConn(f"{ctx.host}:{ctx.port}", ctx.terminal), ctx.host, ctx.port)
        await ws.ready
        return ws
    _, conn = await loop.create_connection(lambda: Conn(ctx.terminal), ctx.host, ctx.port)
    return conn


async def one(ctx: Ctx, conn: Conn | None) -> tuple[Result, Conn | None]:
    """Run one request (reconnecting if needed); returns the result and a reusable connection."""
    if conn is None or conn.transport is None:
        try:
            conn = await asyncio.wait_for(connect(ctx), ctx.timeout_s)
        except (OSError, TimeoutError, ConnectionError) as exc:
            return Result(t_sent=time.perf_counter(), error=f"connect: {type(exc).__name__}"), None
    fut = conn.send(ctx.request)
    try:
        result = await asyncio.wait_for(asyncio.shield(fut), ctx.timeout_s)
    except TimeoutError:
        if conn.transport is not None:
            conn.transport.close()
        return Result(t_sent=time.perf_counter(), error="timeout"), None
    return result, (conn if result.ok and conn.reuse else None)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100.0 * (len(values) - 1)))]


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000.0, 3)


async def latency(ctx: Ctx, count: int, warmup: int, gap_s: float = 0.0) -> dict:
    conn = None
    ttfb: list[float] = []
    total: list[float] = []
    errors = 0
    deadline = time.perf_counter() + ctx.timeout_s
    for i in range(warmup + count):
        if time.perf_counter() > deadline:
            break
        if i and gap_s:
            await asyncio.sleep(gap_s)
        result, conn = await one(ctx, conn)
        if i < warmup:
            continue
        if result.ok and result.t_first is not None and result.t_end is not None:
            ttfb.append(result.t_first - result.t_sent)
            total.append(result.t_end - result.t_sent)
        else:
            errors += 1
    return {
        "requests": len(total),
        "errors": errors,
        "ttfb_p50_ms": ms(pct(ttfb, 50)),
        "ttfb_p99_ms": ms(pct(ttfb, 99)),
        "total_p50_ms": ms(pct(total, 50)),
        "total_p99_ms": ms(pct(total, 99)),
    }


async def throughput(ctx: Ctx, concurrency: int, warmup_s: float, duration_s: float, pids: list[int]) -> dict:
    t0 = time.perf_counter()
    w_start, w_end = t0 + warmup_s, t0 + warmup_s + duration_s
    done: list[Result] = []
    errors: list[str] = []
    marks: dict[str, dict] = {}

    async def worker() -> None:
        conn = None
        while time.perf_counter() < w_end:
            result, conn = await one(ctx, conn)
            if result.ok:
                done.append(result)
            else:
                errors.append(result.error or "incomplete")
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, w_start - time.perf_counter()))
        marks["start"] = snapshot(pids)
        await asyncio.sleep(max(0.0, w_end - time.perf_counter()))
        marks["end"] = snapshot(pids)

    await asyncio.wait_for(asyncio.gather(sampler(), *(worker() for _ in range(concurrency))), ctx.timeout_s)
    in_window = [r for r in done if r.t_end is not None and w_start <= r.t_end < w_end]
    events = sum(r.events for r in in_window)
    return {
        "concurrency": concurrency,
        "completed": len(in_window),
        "rps": round(len(in_window) / duration_s, 1),
        "events_received": events,
        "errors": len(errors),
        "error_sample": sorted(set(errors))[:3],
        "cpu_s": cpu_delta(marks, duration_s),
        "window_s": duration_s,
    }


def snapshot(pids: list[int]) -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF)
    snap = {str(pid): cpu_seconds(pid) for pid in pids}
    snap["client"] = own.ru_utime + own.ru_stime
    return snap


def cpu_delta(marks: dict, duration_s: float) -> dict:
    if "start" not in marks or "end" not in marks:
        return {}
    return {
        k: round(marks["end"][k] - marks["start"][k], 3)
        for k in marks["start"]
        if marks["start"][k] is not None and marks["end"].get(k) is not None
    }


async def hold(ctx: Ctx, streams: int, pids: list[int], rss_at_s: float) -> dict:
    base = {str(pid): rss_bytes(pid) for pid in pids}
    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(one(ctx, None)) for _ in range(streams)]
    await asyncio.sleep(rss_at_s)  # all streams should be open by now and still running
    rss_open = {str(pid): rss_bytes(pid) for pid in pids}
    running = sum(1 for t in tasks if not t.done())
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, ctx.timeout_s - rss_at_s))
    for t in pending:
        t.cancel()
    finished = [t.result()[0] for t in done]
    for _, conn in (t.result() for t in done):
        if conn is not None and conn.transport is not None:
            conn.transport.close()
    ok = [r for r in finished if r.ok]
    first = [r.t_first - t0 for r in finished if r.t_first is not None]
    return {
        "streams": streams,
        "completed": len(ok),
        "lost": streams - len(ok),
        "error_sample": sorted({r.error or "incomplete" for r in finished if not r.ok})[:3],
        "opened": len(first),
        "all_open_s": round(max(first), 3) if len(first) == streams else None,
        "first_event_p50_s": round(pct(first, 50) or 0, 3),
        "first_event_max_s": round(max(first), 3) if first else None,
        "running_at_rss_sample": running,
        "rss_base": base,
        "rss_open": rss_open,
    }


async def paced(
    ctx: Ctx, streams: int, ideal_s: float, pids: list[int], rss_at_s: float, stagger_s: float = 0.0
) -> dict:
    """``streams`` paced streams at once; with ``stagger_s`` > 0 stream i starts i × stagger_s /
    streams later (so streams' events do not arrive in step: each wake-up of the server then finds
    one event, not one per stream)."""
    base = {str(pid): rss_bytes(pid) for pid in pids}
    start = snapshot(pids)

    async def later(i: int):
        await asyncio.sleep(i * stagger_s / streams)
        return await one(ctx, None)

    tasks = [asyncio.ensure_future(later(i) if stagger_s else one(ctx, None)) for i in range(streams)]
    await asyncio.sleep(min(rss_at_s, ideal_s / 2))  # every stream open, none finished yet
    rss_open = {str(pid): rss_bytes(pid) for pid in pids}
    results = await asyncio.wait_for(asyncio.gather(*tasks), ctx.timeout_s)
    end = snapshot(pids)
    durations = [r.t_end - r.t_sent for r, _ in results if r.ok and r.t_end is not None]
    first = [r.t_first - r.t_sent for r, _ in results if r.ok and r.t_first is not None]
    for _, conn in results:
        if conn is not None and conn.transport is not None:
            conn.transport.close()
    stretch = [d / ideal_s - 1.0 for d in durations]
    return {
        "streams": streams,
        "completed": len(durations),
        "lost": streams - len(durations),
        "error_sample": sorted({r.error or "incomplete" for r, _ in results if not r.ok})[:3],
        "ideal_s": ideal_s,
        "duration_p50_s": round(pct(durations, 50) or 0, 3),
        "duration_max_s": round(max(durations), 3) if durations else None,
        "stretch_p50_pct": round(100 * (pct(stretch, 50) or 0), 2),
        "stretch_p99_pct": round(100 * (pct(stretch, 99) or 0), 2),
        "stretch_max_pct": round(100 * max(stretch), 2) if stretch else None,
        "first_event_p50_s": round(pct(first, 50) or 0, 3),
        "first_event_max_s": round(max(first), 3) if first else None,
        "events": sum(r.events for r, _ in results if r.ok),
        "cpu_s": cpu_delta({"start": start, "end": end}, 0),
        "rss_base": base,
        "rss_open": rss_open,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="bench load client")
    parser.add_argument("scenario", choices=["latency", "throughput", "hold", "paced"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=list(TERMINAL), required=True)
    parser.add_argument("--deltas", type=int, default=50)
    parser.add_argument("--pace-ms", type=int, default=0)
    parser.add_argument("--stagger", action="store_true", help="paced: spread the starts over one pace interval")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--gap-s", type=float, default=0.0, help="latency: seconds between requests")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--duration-s", type=float, default=4.0)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--ideal-s", type=float, default=10.0)
    parser.add_argument("--rss-at-s", type=float, default=15.0)
    parser.add_argument("--pids", type=int, nargs="*", default=[])
    parser.add_argument("--timeout-s", type=float, default=60.0)
    parser.add_argument("--api-key", default=None, help="codexgw API key to send (Bearer)")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host = "127.0.0.1"
    ctx = Ctx(
        host=host,
        port=args.port,
        request=request_bytes(args.kind, f"{host}:{args.port}", args.deltas, args.pace_ms, args.api_key),
        terminal=TERMINAL[args.kind],
        timeout_s=args.timeout_s,
    )
    if args.scenario == "latency":
        coro = latency(ctx, args.count, args.warmup, args.gap_s)
    elif args.scenario == "throughput":
        coro = throughput(ctx, args.concurrency, args.warmup_s, args.duration_s, args.pids)
    elif args.scenario == "hold":
        coro = hold(ctx, args.streams, args.pids, args.rss_at_s)
    else:
        stagger_s = args.pace_ms / 1000 if args.stagger else 0.0
        coro = paced(ctx, args.streams, args.ideal_s, args.pids, args.rss_at_s, stagger_s)
    start = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    out = asyncio.run(coro)
    end = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - t0
    out["client_cpu_pct"] = round(
        100 * ((end.ru_utime + end.ru_stime) - (start.ru_utime + start.ru_stime)) / max(wall, 1e-9), 1
    )
    out["client_pid"] = os.getpid()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
