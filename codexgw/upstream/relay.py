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

A :class:`Relay` runs either way: iterated (the WebSocket, h2 clients, the keep-alive answer) or
pushed (:meth:`Relay.push`, an HTTP/1.1 client's body writer), where on the direct reader the read
loop calls the writer itself (``UpstreamStream.pump``: one cancel scope per heartbeat interval, no
async generator between the socket and the client, issue 17).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
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

__all__ = ["Pushable", "Relay", "Saver", "StreamEnd", "StreamHandler", "collect", "relay", "upstream_closed"]

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


class Pushable:
    """A streamed answer's body that runs one of two ways, once: iterated (``async for chunk in
    body``, closed with :meth:`aclose`: what to write, never empty), or pushed (:meth:`push`
    hands each chunk to the caller's ``write`` itself). Subclasses give ``_iterate`` (the iteration) and
    may give a :meth:`push` that does better than iterating."""

    __slots__ = ("_gen",)

    def __init__(self) -> None:
        self._gen: AsyncGenerator[Any, None] | None = None

    def __aiter__(self) -> Pushable:
        return self

    async def __anext__(self) -> Any:
        if self._gen is None:
            self._gen = self._iterate()
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Close the iteration (its ``finally`` runs); a body never started, or pushed, has nothing
        to close."""
        if self._gen is not None:
            await self._gen.aclose()

    def _iterate(self) -> AsyncGenerator[Any, None]:
        raise NotImplementedError

    async def push(self, write: Callable[[Any], Awaitable[None]]) -> None:
        """Run the body, handing each chunk to ``write`` in order (here: by iterating it).

        ``write`` must not be cancellable mid-chunk: it may only reach a checkpoint shielded
        (``codexgw.api.server.BodyWriter.send``: a non-blocking send, the rest shielded), since a
        subclass may call it inside its read loop's cancel scope. Raises what ``write`` raises.
        """
        async with aclosing(self) as chunks:
            async for chunk in chunks:
                await write(chunk)


class Relay(Pushable):
    """A streamed answer's relay: ``stream`` to the client through ``handler`` (see the module
    docstring). Made by :func:`relay`; iterated, the chunks are SSE bytes or, for the WebSocket,
    lists of text frames. :meth:`push` on the direct reader (``stream.direct``) runs the read loop
    in this coroutine with one cancel scope per heartbeat interval instead of one per wait
    (``UpstreamStream.pump``: issue 17).
    """

    __slots__ = ("_end_due", "_gw", "_handler", "_on_end", "_save", "_stream")

    def __init__(
        self, gw: Gateway, stream: UpstreamStream, handler: StreamHandler, on_end: StreamEnd, save: Saver | None
    ) -> None:
        self._gw = gw
        self._stream = stream
        self._handler = handler
        self._on_end = on_end
        self._save = save
        self._end_due = False  # a handler that stopped reading saw the upstream's terminal event
        super().__init__()

    async def _iterate(self) -> AsyncGenerator[Any, None]:
        gw, stream, handler = self._gw, self._stream, self._handler
        last = None  # the output of the batch that finished the answer: it goes out with the handler's end
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
                    out, stop = await self._feed(batch, shield=False)
                    del batch  # hold nothing while the upstream is silent
                    if stop:
                        last = out
                        break
                    if out:
                        yield out
                    del out
            if tail := _tail(handler, last):
                yield tail
        except CodexgwError as exc:
            yield handler.fail(exc, time.time())
        finally:
            self._ended()
            await upstream_closed(stream, end_due=self._end_due)

    async def push(self, write: Callable[[Any], Awaitable[None]]) -> None:
        """:meth:`Pushable.push`; on the direct reader ``write`` runs inside the read loop's cancel
        scope (the heartbeat's deadline, the drain's cut). An upstream failure or the drain's cut
        is the handler's in-band error, written."""
        stream, handler = self._stream, self._handler
        if not stream.direct or self._gen is not None:
            await super().push(write)
            return
        last = None
        on_silence = handler.heartbeat

        async def consume(batch: Batch | None) -> bool:
            nonlocal last
            if batch is None:
                await write(on_silence)
                return False
            out, stop = await self._feed(batch, shield=True)  # inside the read loop's scope
            if stop:
                last = out
                return True
            if out:
                await write(out)
            return False

        settings = self._gw.settings
        try:
            try:
                await stream.pump(consume, settings.heartbeat_s, settings.coalesce_ms / 1000, cut=self._gw.drain)
                tail = _tail(handler, last)
            except CodexgwError as exc:
                tail = handler.fail(exc, time.time())
            if tail:
                await write(tail)
        finally:
            self._ended()
            await upstream_closed(stream, end_due=self._end_due)

    async def _feed(self, batch: Batch, *, shield: bool) -> tuple[Any, bool]:
        """Feed ``batch`` to the handler: ``(what to write, stop reading)``. Once the answer
        finished, the response the handler keeps is stored first (``shield``: the save cannot be
        cancelled), and reading stops unless the handler drains; the end is due when it stops
        at a terminal event."""
        handler = self._handler
        out = handler.feed_batch(batch)
        if not handler.state.finished:
            return out, False
        if self._save is not None and (kept := handler.take_kept()) is not None:
            with trio.CancelScope(shield=shield):
                await self._save(*kept)
        if handler.drains:
            return out, False
        self._end_due = any(event_type(event) in TERMINAL_EVENTS for event, _raw in batch)
        return out, True

    def _ended(self) -> None:
        handler = self._handler
        handler.client_closed()
        self._on_end(handler.state.outcome or Outcome.CLIENT_CLOSED, handler.reported_usage())


def _tail(handler: StreamHandler, last: Any) -> Any:
    """The last chunk: the handler's end, after the output of the batch that finished (``last``)."""
    end = handler.end(time.time())
    return end if last is None else last + end


def relay(
    gw: Gateway,
    stream: UpstreamStream,
    handler: StreamHandler,
    *,
    on_end: StreamEnd,
    save: Saver | None = None,
) -> Relay:
    """Relay ``stream`` to the client through ``handler`` (see the module docstring and :class:`Relay`).

    Args:
        gw: the gateway (its nursery runs the heartbeat pump; ``settings.heartbeat_s``, s).
        stream: the upstream stream, past its peek; closed when the relay ends.
        handler: the stream's sans-IO handler.
        on_end: called once at the end with the stream's outcome and usage.
        save: stores the response the handler keeps (``take_kept``) before its terminal batch goes
            out, so a follow-up naming it can never arrive first; ``None`` when nothing is kept.

    Returns:
        The :class:`Relay`: iterate it (what the handler gives, never empty: for SSE the bytes to
        write, each a whole number of events or heartbeat comments; for the WebSocket a list of
        text frames), or :meth:`Relay.push` it.
    """
    return Relay(gw, stream, handler, on_end, save)


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
