"""Graceful drain: on SIGTERM/SIGINT stop taking work, let open work finish, then cut it cleanly.

Theory of operation (issue 16). One :class:`Drain` per serving process, built by the process's
entry (``codexgw.cli.serve``; a worker supervisor runs one in each worker) and handed to the parts
that need it through the :class:`~codexgw.upstream.gateway.Gateway` (never a global):

1. :meth:`Drain.begin` (the first signal): the server keeps listening, but every new request is
   answered 503 ``draining`` with ``Retry-After`` (:meth:`Drain.refusal`), and ``/health`` answers
   503 ``draining`` so a load balancer moves on. ``/status`` and ``/metrics`` still answer.
2. Open work (each hot-route request, each WebSocket turn: :meth:`Drain.work`) runs on for
   ``grace_s`` seconds; :meth:`Drain.run` returns early once none is left.
3. Then :meth:`Drain.cut_now` cancels every :meth:`Drain.cuttable` scope. The code inside one turns
   the cancellation into :class:`~codexgw.errors.ServerShuttingDownError`: the stream loop
   (:meth:`Drain.guard` around ``relay``'s batches) writes it in-band through its handler (chat
   ``data: {"error": …}``, Responses ``response.failed`` with code ``server_shutting_down``, the
   WebSocket's ``response.failed`` frame) and ends the body cleanly; a request that sent nothing
   yet is answered 503 ``server_shutting_down``.
4. Once the cut work ended (at most ``tail_s``), one summary line is logged (finished N, cut M) and
   ``stop`` is called: hypercorn stops listening and closes idle connections.

A second signal calls :meth:`cut_now` at once (step 3 without waiting for the grace).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing, contextmanager
from typing import TypeVar

import trio

from codexgw.errors import DrainingError, ServerShuttingDownError

__all__ = ["CUT_TAIL_S", "Drain"]

log = logging.getLogger("codexgw.serve")

T = TypeVar("T")

CUT_TAIL_S = 5.0
"""After the cut, how long (s) the cut work may take to write its last bytes before the server stops."""

SHUTTING_DOWN = "the server is shutting down and could not finish this request in time; retry it"


class Drain:
    """The drain state of one serving process (see the module docstring).

    Args:
        grace_s: how long open work may run on after :meth:`begin` (s).
        tail_s: after the cut, how long the cut work may take to end (s).

    Attributes:
        finished: work that ended on its own while draining.
        cut: work cut at the end of the grace (or by a second signal).
    """

    def __init__(self, *, grace_s: float = 30.0, tail_s: float = CUT_TAIL_S) -> None:
        self.grace_s = grace_s
        self.tail_s = tail_s
        self.open = 0
        self.finished = 0
        self.cut = 0
        self._deadline: float | None = None  # trio time at which the grace ends
        self._cutting = False
        self._scopes: set[trio.CancelScope] = set()
        self._changed = trio.Event()

    @property
    def draining(self) -> bool:
        """:meth:`begin` was called: new work is refused."""
        return self._deadline is not None

    @property
    def cutting(self) -> bool:
        """The grace ended (or a second signal came): open work is being cut."""
        return self._cutting

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def begin(self) -> bool:
        """Start draining now (in a trio run); ``False`` if it had already begun."""
        if self._deadline is not None:
            return False
        self._deadline = trio.current_time() + self.grace_s
        self._wake()
        return True

    def cut_now(self) -> None:
        """End the grace now: cancel every open :meth:`cuttable` scope (begins the drain if needed)."""
        self.begin()
        self._cutting = True
        for scope in list(self._scopes):
            scope.cancel()
        self._wake()

    def retry_after_s(self) -> float:
        """Seconds until the drain ends (at least 1): the ``Retry-After`` of a refusal."""
        if self._deadline is None:
            return 1.0
        return max(1.0, math.ceil(self._deadline - trio.current_time() + self.tail_s))

    def refusal(self) -> DrainingError:
        """The 503 ``draining`` answer to a new request."""
        return DrainingError(
            "the server is shutting down and takes no new requests; retry on another instance "
            "or after Retry-After",
            retry_after_s=self.retry_after_s(),
        )

    @contextmanager
    def work(self) -> Iterator[None]:
        """Count one unit of open work (a request, a WebSocket turn) for the idle check and the
        summary."""
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1
            if self._cutting:
                self.cut += 1
            elif self.draining:
                self.finished += 1
            if self.draining:
                self._wake()

    @contextmanager
    def cuttable(self) -> Iterator[trio.CancelScope]:
        """A cancel scope that :meth:`cut_now` cancels (already cancelled once cutting). The caller
        checks ``scope.cancelled_caught`` after the block and reports
        :class:`~codexgw.errors.ServerShuttingDownError`. Never ``yield`` inside it (trio rule)."""
        scope = trio.CancelScope()
        self.watch(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)

    def watch(self, scope: trio.CancelScope) -> None:
        """Let :meth:`cut_now` cancel ``scope`` (cancelled at once when already cutting); the
        caller calls :meth:`unwatch` when its block ends. :meth:`cuttable` in two calls, for a loop
        that already has a scope of its own (the direct reader's wait, ``UpstreamStream.paced_batches``)."""
        if self._cutting:
            scope.cancel()
        self._scopes.add(scope)

    def unwatch(self, scope: trio.CancelScope) -> None:
        """Forget ``scope`` (see :meth:`watch`; never raises)."""
        self._scopes.discard(scope)

    async def guard(self, source: AsyncIterator[T]) -> AsyncIterator[T]:
        """``source``'s items, each wait for the next one :meth:`cuttable`.

        Raises:
            ServerShuttingDownError: the drain cut the stream (the relay's handler tells it in-band).
        """
        async with aclosing(source) as items:  # type: ignore[type-var]
            while True:
                with self.cuttable() as scope:
                    try:
                        item = await items.__anext__()
                    except StopAsyncIteration:
                        return
                if scope.cancelled_caught:
                    raise ServerShuttingDownError(SHUTTING_DOWN)
                yield item

    def shutting_down(self) -> ServerShuttingDownError:
        """The error a cut request ends with."""
        return ServerShuttingDownError(SHUTTING_DOWN)

    async def _until(self, done: Callable[[], bool], deadline: float) -> None:
        with trio.move_on_at(deadline):
            while not done():
                await self._changed.wait()

    async def run(self, stop: Callable[[], None]) -> None:
        """Wait for :meth:`begin`, then drain (the module docstring's steps 2 to 4) and call ``stop``.

        Runs in the serve nursery for the whole life of the server.
        """
        while not self.draining:
            await self._changed.wait()
        started = trio.current_time()
        assert self._deadline is not None
        await self._until(lambda: self.open == 0 or self._cutting, self._deadline)
        left = self.open
        if left:
            self.cut_now()
            await self._until(lambda: self.open == 0, trio.current_time() + self.tail_s)
        log.info(
            "drain: finished %d, cut %d in %.1f s",
            self.finished,
            self.cut + self.open,  # work still open after tail_s is cut by hypercorn's stop
            trio.current_time() - started,
        )
        stop()
