"""Relay upstream batches to the client, coalesced, and mark silences so the route can ping.

A model that reasons silently for minutes sends nothing; proxies and clients on the way cut idle
connections. The route therefore writes an SSE comment (``: keep-alive``) after ``interval_s`` of
upstream silence (design §3, ~15 s).

Waiting with a timeout on the upstream read itself is not safe: httpcore closes a response whose
read is cancelled. So a pump task reads the upstream in the gateway's nursery and appends what it
reads to a pending list; the consumer takes *everything* pending at once, so events that arrived
while the previous write was in flight go out in one write (design §5: coalesce every complete
event already received; the bench profile showed one socket send per event as the top cost).
Backpressure holds: the pump stops reading while ``max_pending`` items wait.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import TypeVar

import trio

from codexgw.translate.sse import encode_comment

T = TypeVar("T")

HEARTBEAT = encode_comment("keep-alive")
"""The SSE comment written on silence (ignored by every SSE client)."""


class _Buffer:
    """State shared by the pump and the consumer of one stream (a single trio thread: no locks)."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self.finished = False
        self.error: BaseException | None = None
        self.arrived = trio.Event()  # set when items were added or the pump finished
        self.drained = trio.Event()  # set when the consumer took the items
        self.stopped = trio.Event()  # set when the pump task has exited

    def take(self) -> list[object]:
        items, self.items = self.items, []
        self.arrived = trio.Event()
        self.drained.set()
        self.drained = trio.Event()
        return items


async def with_heartbeat(
    source: AsyncIterator[list[T]],
    *,
    nursery: trio.Nursery | None,
    interval_s: float,
    max_pending: int = 256,
) -> AsyncIterator[list[T] | None]:
    """Yield the batches of ``source`` merged as they pile up, and ``None`` on each silence.

    Args:
        source: an async iterator of lists (e.g. ``UpstreamStream.batches()``), iterated in a task
            of ``nursery``; an exception it raises is re-raised here, in the consumer.
        nursery: where the pump task runs; ``None`` or ``interval_s`` = inf disables the pump (the
            source is iterated directly, one batch at a time).
        interval_s: silence, in seconds, before a ``None`` is yielded.
        max_pending: the pump pauses while this many items wait (backpressure on the upstream).

    Yields:
        Non-empty lists holding every item received since the previous yield, in order, or
        ``None`` after ``interval_s`` of silence. The pump stops when the consumer stops (closed or
        cancelled), so a client that goes away also stops the upstream read.
    """
    if nursery is None or math.isinf(interval_s):
        async for batch in source:
            yield batch
        return
    buf = _Buffer()
    pump_scope = trio.CancelScope()

    async def pump() -> None:
        with pump_scope:
            try:
                async for batch in source:
                    buf.items.extend(batch)
                    del batch  # hold nothing while the upstream is silent
                    buf.arrived.set()
                    while len(buf.items) >= max_pending:
                        await buf.drained.wait()
            except Exception as exc:
                buf.error = exc
            finally:
                buf.finished = True
                buf.arrived.set()
                buf.stopped.set()

    nursery.start_soon(pump)
    try:
        while True:
            if not buf.items and not buf.finished:
                with trio.move_on_after(interval_s):  # never yield inside this scope (trio rule)
                    await buf.arrived.wait()
                if not buf.items and not buf.finished:
                    yield None
                    continue
            if buf.items:
                yield buf.take()  # type: ignore[misc]
                continue
            if buf.error is not None:
                raise buf.error
            return
    finally:
        pump_scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await buf.stopped.wait()
