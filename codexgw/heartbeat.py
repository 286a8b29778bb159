"""Keep an idle SSE stream alive: relay upstream batches, and mark silences so the route can ping.

A model that reasons silently for minutes sends nothing; proxies and clients on the way cut idle
connections. The route therefore writes an SSE comment (``: keep-alive``) after ``interval_s`` of
upstream silence (design §3, ~15 s).

Waiting with a timeout on the upstream read itself is not safe: httpcore closes a response whose
read is cancelled. So a pump task reads the upstream in the gateway's nursery and hands batches
over a memory channel, whose ``receive`` can be timed out safely (race two tasks, style.md).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import TypeVar

import trio

T = TypeVar("T")

HEARTBEAT = b": keep-alive\n\n"
"""The SSE comment written on silence (ignored by every SSE client)."""


async def with_heartbeat(
    source: AsyncIterator[T], *, nursery: trio.Nursery | None, interval_s: float
) -> AsyncIterator[T | None]:
    """Yield the items of ``source``, and ``None`` after every ``interval_s`` seconds of silence.

    Args:
        source: an async iterator (e.g. ``UpstreamStream.batches()``); it is iterated in a task of
            ``nursery``, so exceptions it raises are re-raised here, in the consumer.
        nursery: where the pump task runs; ``None`` or ``interval_s`` = inf disables heartbeats (the
            source is iterated directly).
        interval_s: silence, in seconds, before a ``None`` is yielded.

    The pump stops when the consumer stops (the generator is closed or cancelled), so a client
    that goes away also stops the upstream read.
    """
    if nursery is None or math.isinf(interval_s):
        async for item in source:
            yield item
        return
    send, receive = trio.open_memory_channel[tuple[str, object]](1)
    done = trio.Event()
    pump_scope = trio.CancelScope()

    async def pump() -> None:
        with pump_scope:
            try:
                async with send:
                    try:
                        async for item in source:
                            await send.send(("item", item))
                    except trio.Cancelled:
                        raise
                    except Exception as exc:
                        await send.send(("error", exc))
            finally:
                done.set()

    nursery.start_soon(pump)
    try:
        async with receive:
            while True:
                got: tuple[str, object] | None = None
                with trio.move_on_after(interval_s):  # never yield inside this scope (trio rule)
                    try:
                        got = await receive.receive()
                    except trio.EndOfChannel:
                        return
                if got is None:
                    yield None
                    continue
                kind, value = got
                if kind == "error":
                    assert isinstance(value, BaseException)
                    raise value
                yield value  # type: ignore[misc]
    finally:
        pump_scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await done.wait()
