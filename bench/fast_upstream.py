"""A fast fake Codex backend for the benchmarks: pre-encoded SSE over raw asyncio sockets.

It is deliberately not the faithful fake of ``tests/fakes``: it parses only the request line, the
``content-length`` and a bench marker, and writes bytes encoded once at start-up, so that it is never
the bottleneck (the bench reports its CPU next to the gateway's).

Routes (any bearer token is accepted, nothing is validated):

* ``POST /backend-api/codex/responses``: a text answer shaped like the real stream:
  ``response.created``, ``response.output_item.added``, N x ``response.output_text.delta``,
  ``response.output_item.done``, ``response.completed``, each event its own HTTP chunk. The first two
  events go out at once; delta *i* (1..N) at ``start + i * pace``; the tail right after the last delta.
  With no pacing the whole answer is one write.
* ``GET /backend-api/codex/models``: a one-model catalogue.

Parameters travel in a marker ``bench-d<N>-p<PACE_MS>`` anywhere in the request (head or body): the
bench puts it in ``prompt_cache_key``, which codexgw forwards in the body and as the ``session_id``
header, so it survives the gateway. Without a marker: ``--deltas`` and ``--pace-ms``.

Usage: ``python -m bench.fast_upstream --port 0 --port-file FILE`` (loopback only); with
``--certfile CERT --keyfile KEY`` it speaks HTTPS, as the real backend does (the paced TLS rows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import resource
import ssl
from pathlib import Path
from typing import ClassVar

MARKER = re.compile(rb"bench-d(\d+)-p(\d+)")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
MAX_DELTAS = 100_000
MAX_PACE_MS = 10_000

HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream\r\n"
    b"transfer-encoding: chunked\r\n"
    b"openai-model: gpt-5.5\r\n"
    b"x-request-id: req_bench\r\n"
    b"x-codex-primary-used-percent: 12.0\r\n"
    b"x-codex-primary-window-minutes: 300\r\n"
    b"x-codex-primary-reset-after-seconds: 9000\r\n"
    b"x-codex-secondary-used-percent: 3.0\r\n"
    b"x-codex-secondary-window-minutes: 10080\r\n"
    b"x-codex-secondary-reset-after-seconds: 500000\r\n"
    b"\r\n"
)
MODELS_BODY = json.dumps(
    {"models": [{"slug": "gpt-5.5", "display_name": "gpt-5.5", "visibility": "list", "priority": 0}]}
).encode()


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _sse(event: dict) -> bytes:
    data = json.dumps(event, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def _response(status: str, output: list, usage: dict | None) -> dict:
    """A Response object with the fields the real backend sends (codex-protocol.md §7)."""
    return {
        "id": "resp_bench0123456789abcdef0123456789abcdef",
        "object": "response",
        "created_at": 1767225600,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": "You are a helpful assistant.",
        "max_output_tokens": None,
        "model": "gpt-5.5",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": "medium", "summary": None},
        "service_tier": "auto",
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


class Answer:
    """The pre-encoded HTTP response for N deltas: head + first events, the deltas, the tail."""

    def __init__(self, deltas: int) -> None:
        item_id = "msg_bench0123456789abcdef0123456789abcdef"
        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        words = [f" word{i % 10}" for i in range(deltas)]
        text = "".join(words)
        item = {"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        done = {**item, "status": "completed", "content": [part]}
        usage = {
            "input_tokens": 20,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": deltas,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 20 + deltas,
        }
        seq = iter(range(deltas + 10))
        first = [
            {"type": "response.created", "response": _response("in_progress", [], None)},
            {"type": "response.output_item.added", "output_index": 0, "item": item},
        ]
        middle = [{"type": "response.output_text.delta", **where, "delta": w, "logprobs": []} for w in words]
        last = [
            {"type": "response.output_item.done", "output_index": 0, "item": done},
            {"type": "response.completed", "response": _response("completed", [done], usage)},
        ]
        for event in (*first, *middle, *last):
            event["sequence_number"] = next(seq)
        self.event_list = [*first, *middle, *last]
        self.events = len(self.event_list)
        self.start = HEAD + b"".join(_chunk(_sse(e)) for e in first)
        self.deltas = [_chunk(_sse(e)) for e in middle]
        self.tail = b"".join(_chunk(_sse(e)) for e in last) + b"0\r\n\r\n"
        self.whole = self.start + b"".join(self.deltas) + self.tail


class Upstream(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive, one request at a time."""

    answers: ClassVar[dict[int, Answer]] = {}
    default_deltas = 50
    default_pace_ms = 0

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[: end + 2])
            match = CONTENT_LENGTH.search(head)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buf) < total:
                return
            request = bytes(self.buf[:total])
            del self.buf[:total]
            self.handle(head, request)

    def handle(self, head: bytes, request: bytes) -> None:
        line = head[: head.find(b"\r\n")]
        method, _, rest = line.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        assert self.transport is not None
        if path.endswith(b"/codex/responses") and method == b"POST":
            self.stream(request)
        elif path.endswith(b"/codex/models"):
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(MODELS_BODY), MODELS_BODY)
            )
        else:
            self.transport.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")

    def stream(self, request: bytes) -> None:
        match = MARKER.search(request)
        if match:
            deltas = min(int(match.group(1)), MAX_DELTAS)
            pace_ms = min(int(match.group(2)), MAX_PACE_MS)
        else:
            deltas, pace_ms = self.default_deltas, self.default_pace_ms
        answer = self.answers.get(deltas)
        if answer is None:
            answer = self.answers[deltas] = Answer(deltas)
        assert self.transport is not None
        if pace_ms == 0 or deltas == 0:
            self.transport.write(answer.whole)
            return
        self.transport.write(answer.start)
        self.busy = True
        loop = asyncio.get_running_loop()
        start = loop.time()
        pace_s = pace_ms / 1000.0

        def send(i: int) -> None:
            self.timer = None
            if self.transport is None:
                return
            # Catch up if the loop fell behind: send every delta that is due by now, in one write.
            now = loop.time()
            j = i
            while j < deltas and start + (j + 1) * pace_s <= now + 0.0005:
                j += 1
            j = max(j, i + 1)
            out = b"".join(answer.deltas[i:j])
            if j >= deltas:
                self.transport.write(out + answer.tail)
                self.busy = False
                if self.buf:
                    self.data_received(b"")
                return
            self.transport.write(out)
            self.timer = loop.call_at(start + (j + 1) * pace_s, send, j)

        self.timer = loop.call_at(start + pace_s, send, 0)


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(port: int, port_file: Path | None, tls: ssl.SSLContext | None = None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=4096, reuse_address=True, ssl=tls)
    bound = server.sockets[0].getsockname()[1]
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(bound))
        tmp.rename(port_file)
    print(f"fast upstream on {'https' if tls else 'http'}://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--deltas", type=int, default=50, help="deltas when the request has no marker")
    parser.add_argument("--pace-ms", type=int, default=0, help="pacing when the request has no marker")
    parser.add_argument("--max-runtime-s", type=float, default=900.0, help="exit after this long regardless")
    parser.add_argument("--certfile", help="serve HTTPS with this PEM certificate (and --keyfile), like the real backend")
    parser.add_argument("--keyfile")
    args = parser.parse_args()
    tls = None
    if args.certfile:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.certfile, args.keyfile)
    _raise_nofile()
    Upstream.default_deltas = args.deltas
    Upstream.default_pace_ms = args.pace_ms
    for n in (50, 500, 30):
        Upstream.answers[n] = Answer(n)

    async def bounded() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(serve(args.port, args.port_file, tls), args.max_runtime_s)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(bounded())


if __name__ == "__main__":
    main()
