"""The one stream loop: upstream batches through a sans-IO stream handler to the client (the shell).

Both streamed answers run :func:`relay`; what differs between them is the handler, a sans-IO object
from ``translate/`` that says what to write and in what state the stream is
(:mod:`codexgw.translate.stream_state`):

* ``POST /v1/chat/completions``: :class:`codexgw.translate.chat_stream.ChatStreamTranslator`;
* ``POST /v1/responses``: :class:`codexgw.translate.passthrough.ResponsesPassthrough`.

The loop (design §3, §5): batches come from :func:`~codexgw.upstream.heartbeat.with_heartbeat`
(every complete event already received, in one write; an SSE comment after each silence); the
handler turns a batch into the bytes to write; once the handler's state is finished the loop
stores the response when the handler asks for it (before that batch goes out), and stops reading
unless the handler ``drains``; the batch that finished the answer goes out with the handler's last
bytes in one write (chat: the final chunks and ``data: [DONE]``). An upstream failure after the
first byte ends the stream with the handler's error tail, and so does the drain's cut
(:meth:`~codexgw.upstream.drain.Drain.guard`: ``server_shutting_down``). When the stream ends in any way (also
when the client leaves) the handler is told, ``on_end`` gets the outcome and the usage (the access
log line and the metrics), and the upstream is closed (after a terminal event, once its body's end
was read, so that its connection goes back to the pool: :func:`upstream_closed`).

Nothing is held between batches (``del``), so an idle stream keeps no event it already passed on.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol

import trio

from codexgw.errors import CodexgwError
from codexgw.translate.events import TERMINAL_EVENTS, Batch, event_json, event_type
from codexgw.translate.stream_state import Outcome, StreamState
from codexgw.upstream.heartbeat import with_heartbeat

if TYPE_CHECKING:
    from codexgw.upstream.gateway import Gateway
    from codexgw.upstream.stream import UpstreamStream

__all__ = ["Saver", "StreamEnd", "StreamHandler", "collect", "relay", "upstream_closed"]

Saver = Callable[[str, list[dict[str, Any]]], Awaitable[None]]
"""``save(response_id, output_items)``: keep a finished response (never raises)."""

StreamEnd = Callable[[Outcome, "dict[str, Any] | None"], None]
"""``on_end(outcome, usage)``: called once when a stream ends; ``usage`` is Responses-shaped."""


class StreamHandler(Protocol):
    """What :func:`relay` needs of a stream's sans-IO handler.

    Attributes:
        state: the stream's state; the loop asks ``state.finished`` after each batch.
        drains: keep reading (and relaying) after the answer finished, to the upstream's end.

    The methods return bytes (SSE) or, for the WebSocket's handler, a list of text frames: what
    :func:`relay` yields is whatever they return.
    """

    state: StreamState
    drains: bool
    heartbeat: Any
    """What to write after a silence (an SSE comment; a keep-alive frame on the WebSocket)."""

    def feed_batch(self, batch: Batch) -> bytes:
        """The bytes to write for a batch of upstream events (``b""`` for none)."""
        ...

    def take_kept(self) -> tuple[str, list[dict[str, Any]]] | None:
        """``(response id, output items)`` to store before the last batch fed goes out, once."""
        ...

    def end(self, now: float) -> bytes:
        """The last bytes once the answer finished or the upstream ended (``now``: epoch s)."""
        ...

    def fail(self, error: CodexgwError, now: float) -> bytes:
        """The last bytes after the upstream broke with ``error`` (``now``: epoch s); also every
        account failing after :meth:`commit` (the in-band error)."""
        ...

    def commit(self) -> None:
        """The headers went out before any output (keep-alive, :mod:`codexgw.upstream.keepalive`)."""
        ...

    def client_closed(self) -> None:
        """The stream is torn down: the client left unless the answer was already finished."""
        ...

    def reported_usage(self) -> dict[str, Any] | None:
        """The upstream's Responses ``usage`` (``input_tokens``, ``output_tokens``), if known."""
        ...


END_WAIT_S = 0.5
"""After a terminal event, how long (s) a relay that stopped reading waits for the body's end
before closing: the end follows the terminal event at once, and read to it the connection goes
back to the pool instead of being closed (the next request saves a TCP and TLS handshake)."""


async def upstream_closed(stream: UpstreamStream, *, end_due: bool = False) -> None:
    """Close the upstream response even while the caller is being cancelled (client went away).
    ``end_due``: the upstream sent its terminal event, so its body's end is read first (at most
    :data:`END_WAIT_S`), and the connection is reused."""
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        if end_due:
            await stream.read_to_end(END_WAIT_S)
        await stream.aclose()


async def relay(
    gw: Gateway,
    stream: UpstreamStream,
    handler: StreamHandler,
    *,
    on_end: StreamEnd,
    save: Saver | None = None,
) -> AsyncIterator[Any]:
    """Relay ``stream`` to the client through ``handler`` (see the module docstring).

    Args:
        gw: the gateway (its nursery runs the heartbeat pump; ``settings.heartbeat_s``, s).
        stream: the upstream stream, past its peek; closed when this generator ends.
        handler: the stream's sans-IO handler.
        on_end: called once at the end with the stream's outcome and usage.
        save: stores the response the handler keeps (``take_kept``) before its terminal batch goes
            out, so a follow-up naming it can never arrive first; ``None`` when nothing is kept.

    Yields:
        What the handler gives (never empty): for SSE the bytes to write, each a whole number of
        events (or heartbeat comments); for the WebSocket a list of text frames.
    """
    last = None  # the output of the batch that finished the answer: it goes out with the handler's end
    end_due = False  # a handler that stopped reading saw the upstream's terminal event
    feed = handler.feed_batch
    drains = handler.drains
    on_silence = handler.heartbeat
    try:
        interval_s = gw.settings.heartbeat_s
        # The body read in this task when it can be (no pump; the drain's cut cancels its wait),
        # else httpx and a pump, with the drain's guard around each wait. Either way a cut is
        # ServerShuttingDownError, told in-band.
        if stream.direct:
            heartbeat = stream.paced_batches(interval_s, gw.settings.coalesce_ms / 1000, cut=gw.drain)
        else:
            heartbeat = gw.drain.guard(with_heartbeat(stream.batches(), nursery=gw.nursery, interval_s=interval_s))
        async with aclosing(heartbeat) as batches:  # closed now when the loop ends, not at GC
            async for batch in batches:
                if batch is None:
                    yield on_silence
                    continue
                out = feed(batch)
                if handler.state.finished and not drains:
                    end_due = any(event_type(event) in TERMINAL_EVENTS for event, _raw in batch)
                del batch  # hold nothing while the upstream is silent
                if handler.state.finished:
                    if save is not None and (kept := handler.take_kept()) is not None:
                        await save(*kept)
                    if not drains:
                        last = out
                        break
                if out:
                    yield out
                del out
        tail = handler.end(time.time()) if last is None else last + handler.end(time.time())
        if tail:
            yield tail
    except CodexgwError as exc:
        yield handler.fail(exc, time.time())
    finally:
        handler.client_closed()
        on_end(handler.state.outcome or Outcome.CLIENT_CLOSED, handler.reported_usage())
        await upstream_closed(stream, end_due=end_due)


async def collect(
    stream: UpstreamStream,
    feed: Callable[[dict[str, Any]], object],
    *,
    until: Callable[[], bool] | None = None,
) -> None:
    """Feed each upstream event's JSON data to ``feed`` (``stream: false``), to the stream's end or
    until ``until()`` is true after an event (then the caller closes the upstream unread).

    Events whose data is not a JSON object are skipped (codex-protocol.md §7).

    Raises:
        UpstreamConnectionError: the connection broke mid-stream (see ``UpstreamStream.batches``).
    """
    async with aclosing(stream.batches()) as batches:
        async for batch in batches:
            for event, _raw in batch:
                data = event_json(event)
                if data is not None:
                    feed(data)
                if until is not None and until():
                    return
