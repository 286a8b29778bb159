"""The serving stack's ceiling: hypercorn's trio worker answering streamed requests with no upstream.

``python -m bench.ceiling --app asgi|quart --port PORT`` serves ``POST /v1/responses``: it reads the
request body, then answers ``200 text/event-stream`` with the same pre-encoded 54-event answer the
fast upstream sends (``bench/fast_upstream.py``), as one body write. Nothing is parsed, translated,
or fetched. ``asgi`` is a bare ASGI callable; ``quart`` is a one-route QuartTrio app, the framework
codexgw uses. The throughput the load client gets from these is the most any gateway built on this
stack can relay on this machine, whatever it does per request, so the bench reports it next to
codexgw's (the ``ceiling`` scenario).

``--app paced`` is the bare ASGI app answering like the paced fast upstream: it reads the bench
marker ``bench-d<N>-p<PACE_MS>`` from the request body and sends the same events, each its own
``http.response.body`` message (so its own HTTP chunk), delta *i* at ``start + i * pace`` (the
first two events at once, the last two right after the last delta). Its CPU per event is the bare
stack's cost of relaying paced events, the denominator of the ``paced`` scenario's headline ratio.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import hypercorn.config
import hypercorn.trio
import trio

from .fast_upstream import Answer, _sse

HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def answer_body(deltas: int) -> bytes:
    """The SSE body (no HTTP framing) of the fast upstream's answer with ``deltas`` deltas."""
    answer = Answer(deltas)
    return b"".join(_sse(event) for event in answer.event_list)


async def _lifespan(receive: Callable[..., Awaitable[dict]], send: Callable[..., Awaitable[None]]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def asgi_app(body: bytes) -> Callable[..., Awaitable[None]]:
    """A bare ASGI app: drain the request body, send the answer in one write."""

    async def app(
        scope: dict[str, Any], receive: Callable[..., Awaitable[dict]], send: Callable[..., Awaitable[None]]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app


MARKER = re.compile(rb"bench-d(\d+)-p(\d+)")


def paced_app() -> Callable[..., Awaitable[None]]:
    """The bare ASGI app sending paced events, each in its own body message (see the module docstring)."""
    answers: dict[int, list[bytes]] = {}

    async def app(
        scope: dict[str, Any], receive: Callable[..., Awaitable[dict]], send: Callable[..., Awaitable[None]]
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        match = MARKER.search(body)
        deltas, pace_ms = (int(match.group(1)), int(match.group(2))) if match else (50, 0)
        events = answers.get(deltas)
        if events is None:
            events = answers[deltas] = [_sse(e) for e in Answer(deltas).event_list]
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        start = trio.current_time()
        pace_s = pace_ms / 1000.0
        last = len(events) - 1
        for i, event in enumerate(events):
            if 2 <= i < last - 1 and pace_s:  # delta i-1 at start + (i - 1) * pace
                await trio.sleep_until(start + (i - 1) * pace_s)
            await send({"type": "http.response.body", "body": event, "more_body": i < last})

    return app


def quart_app(body: bytes) -> Any:
    """A one-route QuartTrio app: ``await request.get_data()``, then a streamed answer in one chunk."""
    from quart import Response, request
    from quart_trio import QuartTrio

    app = QuartTrio("ceiling")

    @app.post("/v1/responses")
    async def responses() -> Response:
        await request.get_data()

        async def stream() -> AsyncIterator[bytes]:
            yield body

        return Response(stream(), status=200, content_type="text/event-stream")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=["asgi", "quart", "paced"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deltas", type=int, default=50)
    args = parser.parse_args()
    body = answer_body(args.deltas)
    app = {"asgi": asgi_app, "quart": quart_app}[args.app](body) if args.app != "paced" else paced_app()
    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.backlog = 2048
    config.accesslog = None
    config.errorlog = None
    trio.run(hypercorn.trio.serve, app, config)


if __name__ == "__main__":
    main()
