"""Keep-alive before the first output: answer a silent request without giving up invisible failover.

Theory of operation (issue 18). The failover shell (:func:`codexgw.upstream.failover.open_stream`)
reads an upstream stream up to its first output before handing it on, so that a failure before
output can move to another account unseen. A model that reasons silently sends no output for a
long time, and until then the client would get no byte, not even the headers: reverse proxies in
front (nginx's 60 s, Cloudflare's 100 s) cut such a request. So:

* :class:`Opening` runs the open in a task of the gateway's nursery. Waiting on it with a timeout
  is safe (waiting on the upstream read itself is not: httpcore closes a response whose read is
  cancelled), and the route can answer while the open goes on.
* The route waits ``settings.keepalive_after_s`` (default 10 s). The common case has its output
  sooner and is served exactly as before (HTTP errors keep their status).
* Otherwise :func:`keep_alive_then_relay` commits: the handler's state becomes ``COMMITTED``
  (:mod:`codexgw.translate.stream_state`), the 200 headers go out with an SSE comment, then one
  comment every ``settings.heartbeat_s`` (15 s) while the open goes on, failing over unseen. When
  the stream is ready it is relayed as usual; when every account failed, the error the client
  would have got as HTTP ends the stream in-band (the handler's ``fail``: chat ``data: {"error":
  …}`` without ``[DONE]``, Responses ``response.failed`` carrying the code and ``resets_at``).

The trade-off: after the commit a usage limit or a relayed 4xx can no longer be an HTTP status,
and the upstream's response headers (``x-codex-turn-state``, ``OpenAI-Model`` …) are not relayed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import trio

from codexgw.errors import CodexgwError, UpstreamConnectionError
from codexgw.translate.stream_state import Outcome
from codexgw.upstream.relay import Pushable, Relay, Saver, StreamEnd, StreamHandler, relay, upstream_closed

if TYPE_CHECKING:
    from codexgw.upstream.gateway import Gateway
    from codexgw.upstream.stream import UpstreamStream

__all__ = ["KeepAliveRelay", "Opening", "keep_alive_then_relay", "open_or_wait"]

log = logging.getLogger("codexgw.upstream.keepalive")

Opener = Callable[[], Awaitable["UpstreamStream"]]
"""``open_stream`` with its arguments bound: opens a peeked stream or raises a CodexgwError."""


class Opening:
    """An :data:`Opener` running in a task of ``nursery`` (see the module docstring).

    Use :meth:`wait`, then :meth:`result` once it finished; always :meth:`aclose` at the end (it
    cancels an open still running, and closes a stream no one took).
    """

    def __init__(self, nursery: trio.Nursery, opener: Opener) -> None:
        self._opener = opener
        self._scope = trio.CancelScope()
        self._done = trio.Event()
        self._stream: UpstreamStream | None = None
        self._error: Exception | None = None
        self._taken = False
        nursery.start_soon(self._run)

    async def _run(self) -> None:
        try:
            with self._scope:
                self._stream = await self._opener()
        except CodexgwError as exc:
            self._error = exc
        except Exception as exc:  # a bug: the route's error boundary logs it (never the serve nursery)
            self._error = exc
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        """The open finished (a stream, an error, or cancelled)."""
        return self._done.is_set()

    async def wait(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` seconds (``inf``: until it ends); whether the open finished."""
        with trio.move_on_after(timeout_s):
            await self._done.wait()
        return self._done.is_set()

    def result(self) -> UpstreamStream:
        """The opened stream, now the caller's to close.

        Raises:
            CodexgwError: what the open raised (e.g. ``UsageLimitError`` when every account is at
                its limit); ``UpstreamConnectionError`` when it was cancelled (server shutdown).
            Exception: a bug in the open, for the caller's error boundary.
            RuntimeError: it has not finished.
        """
        if not self._done.is_set():
            raise RuntimeError("the upstream stream is still opening")
        if self._error is not None:
            raise self._error
        if self._stream is None:
            raise UpstreamConnectionError("the upstream request was cancelled")
        self._taken = True
        return self._stream

    async def aclose(self) -> None:
        """Cancel the open if still running and close a stream no one took (shielded: also while the
        caller is being cancelled, e.g. the client went away)."""
        self._scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await self._done.wait()
            if self._stream is not None and not self._taken:
                self._taken = True
                await upstream_closed(self._stream)


async def open_or_wait(gw: Gateway, opener: Opener, *, wait_s: float) -> UpstreamStream | Opening:
    """Open the upstream stream, giving up waiting after ``wait_s`` seconds.

    ``wait_s`` ``inf`` or ``<= 0`` (keep-alive off, or an answer that cannot stream) opens in this
    task and waits as long as it takes.

    Returns:
        The stream (opened within ``wait_s``), or the :class:`Opening` still running: commit
        (:func:`keep_alive_then_relay`).

    Raises:
        CodexgwError: the open failed within ``wait_s`` (answered as HTTP, as always).
    """
    if wait_s <= 0 or math.isinf(wait_s):
        return await opener()
    opening = Opening(gw.nursery, opener)
    try:
        if await opening.wait(wait_s):
            return opening.result()
    except BaseException:
        await opening.aclose()
        raise
    return opening


class KeepAliveRelay(Pushable):
    """The committed answer (see the module docstring): comments until the stream is open, then
    its :class:`~codexgw.upstream.relay.Relay`, or the error in-band. Iterated, it gives SSE bytes;
    :meth:`push` writes the comments, then pushes the relay (issue 17's direct read loop). Made by
    :func:`keep_alive_then_relay`."""

    __slots__ = ("_gw", "_handler", "_on_end", "_on_stream", "_opening", "_relay", "_relayed")

    def __init__(
        self,
        gw: Gateway,
        opening: Opening,
        handler: StreamHandler,
        on_stream: Callable[[UpstreamStream], Saver | None],
        on_end: StreamEnd,
    ) -> None:
        super().__init__()
        self._gw = gw
        self._opening = opening
        self._handler = handler
        self._on_stream = on_stream
        self._on_end = on_end
        self._relay: Relay | None = None
        self._relayed = False  # on_end is the relay's (or the failure's) from here on

    async def _beats(self) -> AsyncIterator[bytes]:
        """Commit; comments until the open finished; then the in-band error (every attempt failed,
        or the drain's cut), or ``_relay`` set for the stream."""
        gw, handler, opening = self._gw, self._handler, self._opening
        handler.commit()
        yield handler.heartbeat
        while True:
            with gw.drain.cuttable() as cut:
                opened = await opening.wait(gw.settings.heartbeat_s)
            if opened or cut.cancelled_caught:
                break
            yield handler.heartbeat
        try:
            if cut.cancelled_caught:  # the drain's grace ran out while failover went on
                raise gw.drain.shutting_down()
            stream = opening.result()
        except CodexgwError as exc:
            log.info("every attempt failed after the keep-alive began: %s", exc.message)
            tail = handler.fail(exc, time.time())
            handler.client_closed()
            self._relayed = True
            self._on_end(handler.state.outcome or Outcome.FAILED, None)
            yield tail
            return
        save = self._on_stream(stream)
        self._relayed = True
        self._relay = relay(gw, stream, handler, on_end=self._on_end, save=save)

    async def _iterate(self) -> AsyncGenerator[bytes, None]:
        try:
            async with aclosing(self._beats()) as beats:  # type: ignore[type-var]
                async for chunk in beats:
                    yield chunk
            if self._relay is not None:
                async with aclosing(self._relay) as events:
                    async for chunk in events:
                        yield chunk
        finally:
            await self._finish()

    async def push(self, write: Callable[[Any], Awaitable[None]]) -> None:
        """:meth:`Pushable.push`: the comments, then :meth:`Relay.push` (see there)."""
        if self._gen is not None:
            await super().push(write)
            return
        try:
            async with aclosing(self._beats()) as beats:  # type: ignore[type-var]
                async for chunk in beats:
                    await write(chunk)
            if self._relay is not None:
                await self._relay.push(write)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        if not self._relayed:  # the client left during the keep-alive
            self._handler.client_closed()
            self._on_end(self._handler.state.outcome or Outcome.CLIENT_CLOSED, None)
        await self._opening.aclose()


def keep_alive_then_relay(
    gw: Gateway,
    opening: Opening,
    handler: StreamHandler,
    *,
    on_stream: Callable[[UpstreamStream], Saver | None],
    on_end: StreamEnd,
) -> KeepAliveRelay:
    """The committed answer (see the module docstring and :class:`KeepAliveRelay`).

    Args:
        gw: the gateway (``settings.heartbeat_s``: seconds between comments).
        opening: the open still running; closed when the answer ends.
        handler: the stream's handler, not yet fed; it is committed here.
        on_stream: called with the stream once open (the route names its account and model);
            returns the saver for :func:`~codexgw.upstream.relay.relay` (``None``: nothing kept).
        on_end: called once when the answer ends (also when the client left or all accounts failed).

    Returns:
        The answer: iterated, SSE bytes (comments, then the relayed events or the in-band error);
        or pushed.
    """
    return KeepAliveRelay(gw, opening, handler, on_stream, on_end)
