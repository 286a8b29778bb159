"""An upstream Responses SSE stream: peeked before the first byte, then relayed (sans failover).

:func:`codexgw.upstream.failover.open_stream` builds one per successful attempt; the routes iterate
:meth:`UpstreamStream.batches` (every complete event already received, with its raw bytes) and
must ``aclose()`` it. Event names per codex-protocol.md §7.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import trio

from codexgw.client.calls import next_chunk
from codexgw.client.direct import DirectBody, read_timed_out
from codexgw.errors import UpstreamConnectionError
from codexgw.store.sqlite import Account
from codexgw.translate.events import PRE_OUTPUT_EVENTS, Batch, event_type
from codexgw.translate.sse import SSEDecoder, SSEEvent, SSEProtocolError

if TYPE_CHECKING:
    from codexgw.upstream.drain import Drain


_NOT_YET_CONTENT = PRE_OUTPUT_EVENTS | {"response.output_item.added", "response.content_part.added"}
"""Events before an answer's first content (see :meth:`UpstreamStream._decode_to_output`)."""


@dataclass
class UpstreamStream:
    """An upstream SSE stream that passed the peek and now belongs to the route.

    Attributes:
        account: the account serving it.
        headers: upstream response headers to relay to the client (lower-case names).
        model: the model the upstream reports (``OpenAI-Model``) or ``None``.
        sent_at: when the request was sent, ``time.perf_counter()`` seconds (for the TTFB metric).
        early_error: see below.
    """

    account: Account
    response: httpx.Response
    headers: dict[str, str]
    model: str | None
    sent_at: float
    _decoder: SSEDecoder = field(default_factory=SSEDecoder)
    _pending: Batch = field(default_factory=list)
    _chunks: AsyncIterator[bytes] | None = None
    _direct: DirectBody | None = None
    """The body read straight off the socket (:mod:`codexgw.client.direct`), else ``None``: httpx's path."""
    _read_timeout_s: float = math.inf
    _rest: bytes = b""
    """Body bytes :meth:`peek` read but did not decode: everything after the first content event
    (decoded by the next read, before anything new is read)."""
    _on_close: Callable[[], None] | None = None
    """Called once when closed (the ``active_streams`` metric)."""
    early_error: dict[str, Any] | None = None
    """The ``error`` of a ``response.failed`` that came before any output and did not warrant a
    failover (e.g. ``context_length_exceeded``): a route may answer it as an HTTP error instead of
    opening a stream, as OpenAI's Chat Completions does."""

    def __post_init__(self) -> None:
        if self.response.headers.get("content-encoding", "identity").lower() == "identity":
            self._direct = DirectBody.attach(self.response)
            if self._direct is not None:
                try:
                    timeout = self.response.request.extensions.get("timeout", {}).get("read")
                except RuntimeError:  # no request attached
                    timeout = None
                self._read_timeout_s = math.inf if timeout is None else float(timeout)
            # The transport's byte stream already maps httpcore errors to httpx errors; skipping
            # aiter_bytes' decoder and chunker layers saves a stack of async generators per chunk.
            self._chunks = self.response.stream.__aiter__()  # type: ignore[union-attr]
        else:
            self._chunks = self.response.aiter_bytes()

    def _decode_to_output(self, data: bytes) -> Batch:
        """Decode ``data`` block by block up to its first event that is neither preliminary nor an
        item's or part's opening (the first content: a delta, or a terminal event); the bytes after
        it wait in :attr:`_rest`. For :meth:`peek`: an answer that came in one burst (a short one)
        is not all decoded before its first bytes go to the client (issue 17's added TTFB; up to
        the first content, since chat has nothing to write before it). Any split of the input
        decodes to the same events (:class:`SSEDecoder`), so cutting after a blank line is safe
        whatever the framing."""
        decode = self._decoder.decode_raw
        out: Batch = []
        pos = 0
        while (end := data.find(b"\n\n", pos)) >= 0 and end + 2 < len(data):
            got = decode(data[pos : end + 2])
            pos = end + 2
            if got:
                out += got
                if any(event_type(event) not in _NOT_YET_CONTENT for event, _raw in got):
                    self._rest = data[pos:]
                    return out
        out += decode(data[pos:] if pos else data)
        return out

    async def _read_batch(self, *, peeking: bool = False) -> Batch | None:
        """Read until at least one complete event arrives; ``None`` at a clean end of stream
        (``peeking``: decode only up to the first output event, see :meth:`_decode_to_output`).

        Raises:
            UpstreamConnectionError: the connection broke or the stream ended mid-event.
        """
        assert self._chunks is not None
        direct = self._direct
        decode = self._decode_to_output if peeking else self._decoder.decode_raw
        try:
            if self._rest:
                rest, self._rest = self._rest, b""
                if batch := self._decoder.decode_raw(rest):
                    return batch
            while direct is not None:
                data = direct.read_ready()
                if data:
                    if batch := decode(data):
                        return batch
                elif direct.done:
                    self._decoder.flush()
                    return None
                elif not await direct.wait(trio.current_time() + self._read_timeout_s):
                    raise read_timed_out()
            while True:
                chunk = await next_chunk(self._chunks)
                if chunk is None:
                    self._decoder.flush()
                    return None
                batch = decode(chunk)
                if batch:
                    return batch
        except SSEProtocolError:
            raise _cut_mid_event() from None

    async def peek(self) -> tuple[str, SSEEvent] | None:
        """Read events until the first output or terminal event; keep them for :meth:`batches`.

        Returns:
            ``(type, event)`` of the first non-preliminary event, or ``None`` if the stream ended first.
        """
        while True:
            batch = await self._read_batch(peeking=True)
            if batch is None:
                return None
            self._pending.extend(batch)
            for event, _raw in batch:
                kind = event_type(event)
                if kind not in PRE_OUTPUT_EVENTS:
                    return (kind or "", event)

    async def batches(self) -> AsyncIterator[Batch]:
        """Yield the stream as batches of ``(event, raw bytes)``: the peeked events first.

        Raises:
            UpstreamConnectionError: the connection broke mid-stream (the caller ends the client's
                stream with an error event).
        """
        if self._pending:
            pending, self._pending = self._pending, []
            yield pending
            del pending  # an idle stream holds no event it already passed on
        while (batch := await self._read_batch()) is not None:
            yield batch
            del batch

    @property
    def direct(self) -> bool:
        """The body is read straight off the socket: :meth:`paced_batches` works."""
        return self._direct is not None

    async def paced_batches(
        self, interval_s: float, coalesce_s: float = 0.0, *, cut: Drain | None = None
    ) -> AsyncIterator[Batch | None]:
        """:meth:`batches` read in the caller's task, with ``None`` after each ``interval_s`` of
        silence (the heartbeat: a deadline on the wait, no pump task). Each batch holds every
        complete event that could be read at once (coalesced); with ``coalesce_s`` > 0 a batch also
        waits up to that long (s) after its first event for more (``serve --coalesce-ms``: fewer,
        larger writes to the client, each event up to that much later). Only when :attr:`direct`.

        ``cut``: the process's drain; its cut cancels the wait for the next event (the wait's own
        scope, so no :meth:`Drain.guard` layer and no second scope per event: issue 17).

        Raises:
            UpstreamConnectionError: the connection broke, the stream ended mid-event, or nothing
                came for the read timeout (300 s, codex-protocol.md §8.4).
            ServerShuttingDownError: ``cut`` cut the stream (the relay's handler tells it in-band).
        """
        direct = self._direct
        assert direct is not None
        if self._pending:
            pending, self._pending = self._pending, []
            yield pending
            del pending
        decode = self._decoder.decode_raw
        read = direct.read_ready
        heard = trio.current_time()  # when data last came (updated only before a wait)
        got = False
        try:
            if self._rest:  # what came with the first output, in its own write
                rest, self._rest = self._rest, b""
                if batch := decode(rest):
                    yield batch
                    del batch
            while True:
                data = read()
                if data:
                    got = True
                    if batch := decode(data):
                        if coalesce_s:
                            await self._coalesce(batch, trio.current_time() + coalesce_s)
                        yield batch
                        del batch
                    del data
                    continue
                if direct.done:
                    self._decoder.flush()
                    return
                now = trio.current_time()
                if got:
                    heard, got = now, False
                give_up = heard + self._read_timeout_s
                scope = trio.CancelScope(deadline=min(now + interval_s, give_up))
                if cut is not None:
                    cut.watch(scope)
                try:
                    with scope:
                        await direct.readable()
                finally:
                    if cut is not None:
                        cut.unwatch(scope)
                if scope.cancelled_caught:
                    if cut is not None and cut.cutting:
                        raise cut.shutting_down()
                    if trio.current_time() >= give_up:
                        raise read_timed_out()
                    yield None
        except SSEProtocolError:
            raise _cut_mid_event() from None

    async def pump(
        self,
        consume: Callable[[Batch | None], Awaitable[bool]],
        interval_s: float,
        coalesce_s: float = 0.0,
        *,
        cut: Drain | None = None,
    ) -> None:
        """:meth:`paced_batches` pushed: ``await consume(batch)`` for each batch and
        ``consume(None)`` after each ``interval_s`` of silence, until the body's end or ``consume``
        returns ``True`` (stop reading). Only when :attr:`direct`.

        The loop runs in one cancel scope per heartbeat interval, not one per wait (a scope with a
        deadline cost ~16 % of the paced CPU per event, issue 17): its deadline is the heartbeat's
        (``interval_s`` after the latest data or heartbeat) or the read timeout's, whichever is
        first; when it passes while data kept coming, a new scope starts from the latest data,
        with no heartbeat. ``consume`` runs inside the scope, so it must reach a checkpoint only
        shielded (a write that did not block has none). ``coalesce_s``: as in
        :meth:`paced_batches` (the extra wait is shielded, at most ``coalesce_s``).

        Raises:
            UpstreamConnectionError: as :meth:`paced_batches`.
            ServerShuttingDownError: ``cut`` cut the stream.
        """
        direct = self._direct
        assert direct is not None
        if self._pending:
            pending, self._pending = self._pending, []
            if await consume(pending):
                return
            del pending
        decode = self._decoder.decode_raw
        read = direct.read_ready
        clock = trio.lowlevel.current_clock().current_time  # trio.current_time, two calls fewer
        heard = beat = clock()  # the latest data; the latest data or heartbeat
        timeout_s = self._read_timeout_s
        try:
            if self._rest:  # what came with the first output, in its own write
                rest, self._rest = self._rest, b""
                if (batch := decode(rest)) and await consume(batch):
                    return
                del rest
            while True:
                got = False
                scope = trio.CancelScope(deadline=min(beat + interval_s, heard + timeout_s))
                if cut is not None:
                    cut.watch(scope)
                try:
                    with scope:
                        while True:
                            data = read()
                            if data:
                                got = True
                                if batch := decode(data):
                                    if coalesce_s:
                                        with trio.CancelScope(shield=True):
                                            await self._coalesce(batch, clock() + coalesce_s)
                                    if await consume(batch):
                                        return
                                    del batch
                                del data
                                continue
                            if direct.done:
                                self._decoder.flush()
                                return
                            if got:
                                heard = beat = clock()
                                got = False
                            await direct.readable()
                finally:
                    if cut is not None:
                        cut.unwatch(scope)
                # Only a cancellation ends the scope's block without a return: the cut or the deadline,
                # delivered at the wait (``consume`` checkpoints only shielded), so ``heard`` is current.
                if cut is not None and cut.cutting:
                    raise cut.shutting_down()
                now = clock()
                if now >= heard + timeout_s:
                    raise read_timed_out()
                if now >= beat + interval_s:
                    beat = now
                    if await consume(None):
                        return
        except SSEProtocolError:
            raise _cut_mid_event() from None

    async def _coalesce(self, batch: Batch, until: float) -> None:
        """Add to ``batch`` the events that come before ``until`` (``trio.current_time()`` s) or
        the body's end (``serve --coalesce-ms``). Only when :attr:`direct`."""
        direct = self._direct
        assert direct is not None
        while not direct.done and await direct.wait(until):
            if more := direct.read_ready():
                batch.extend(self._decoder.decode_raw(more))

    async def read_to_end(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` (s) for the rest of the body, discarding it, so that closing
        returns the connection to the pool (after the terminal event the body's end is all that is
        left). Only on the direct path (httpx's closes the connection either way); never raises."""
        direct = self._direct
        if direct is None:
            return
        with trio.move_on_after(timeout_s):
            try:
                while not direct.done:
                    if not direct.read_ready() and not direct.done:
                        await direct.readable()
            except UpstreamConnectionError:
                pass

    async def aclose(self) -> None:
        """Close the upstream response (aborts the upstream generation if still running; a body
        already read to its end leaves its connection to the pool)."""
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()
        if self._direct is not None:
            self._direct.finish()
        await self.response.aclose()


def _cut_mid_event() -> UpstreamConnectionError:
    """The error of a body that ended inside an SSE event (the decoder's ``SSEProtocolError``)."""
    return UpstreamConnectionError("the Codex backend's stream ended in the middle of an event")
