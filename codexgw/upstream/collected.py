"""``stream: false``: read a whole answer, failing over when the upstream drops mid-answer.

A non-streamed answer reaches the client only once it is complete, so a connection that breaks
after the first output (past :func:`~codexgw.upstream.failover.open_stream`'s peek) has shown the
client nothing: the request moves to another account (issue 16), as a failure before the first
byte would. At most ``settings.retries`` such moves; each counts as a failover
(:func:`~codexgw.upstream.failover.dropped`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from codexgw.errors import UpstreamConnectionError
from codexgw.upstream.failover import dropped
from codexgw.upstream.gateway import Gateway
from codexgw.upstream.relay import upstream_closed
from codexgw.upstream.stream import UpstreamStream

__all__ = ["collect_answer"]

T = TypeVar("T")


async def collect_answer(
    gw: Gateway,
    open_: Callable[[frozenset[int]], Awaitable[UpstreamStream]],
    read: Callable[[UpstreamStream], Awaitable[T]],
) -> tuple[UpstreamStream, T]:
    """Open a stream (``open_(exclude)``: ``open_stream`` without the accounts that dropped) and
    ``read`` it whole; the stream is closed before this returns.

    Returns:
        ``(the stream that served, what read returned)``.

    Raises:
        UpstreamConnectionError: the upstream dropped mid-answer on ``retries + 1`` accounts.
        CodexgwError: whatever ``open_`` or ``read`` raise otherwise.
    """
    failed: set[int] = set()
    while True:
        stream = await open_(frozenset(failed))
        try:
            return stream, await read(stream)
        except UpstreamConnectionError as exc:
            if len(failed) >= gw.settings.retries:
                raise
            dropped(gw, stream.account, exc)
            failed.add(stream.account.id)
        finally:
            await upstream_closed(stream)
