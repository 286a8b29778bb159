"""hypercorn's trio worker, with one change to the connection: a chunk goes straight to the socket.

Per chunk a streamed response costs hypercorn's trio connection (``hypercorn.trio.tcp_server.
TCPServer.protocol_send``) a ``trio.Lock`` acquire (a scheduler round even when nobody holds it), a
shielded cancel scope and ``SocketStream.send_all`` (another scheduler round after the send
succeeded). With paced events (a model's tokens tens of ms apart, each its own chunk) that was about
a fifth of the server's CPU per relayed event (issue 17, README "Paced events").

:class:`Connection` is hypercorn's connection with that one method changed: when the connection is
plain TCP and no other send is in progress (the lock is free), the bytes go to the socket with one
non-blocking ``send``; whatever the socket did not take goes the original way (under the lock, so
order is kept, and waiting for the socket like before). TLS, or a send while another is waiting,
takes hypercorn's path unchanged.

:func:`serve_http` is ``hypercorn.trio.serve`` (lifespan, the configured sockets, graceful
shutdown on ``shutdown_trigger``) serving connections of that class; hypercorn itself is not
changed (nothing global is patched), so anything else in the process using hypercorn gets its own
behaviour. It relies on hypercorn 0.18's layout (``TCPServer``, ``Lifespan``, ``WorkerContext``);
``tests/test_http_server.py`` pins the behaviour and fails when that layout changes.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app

__all__ = ["Connection", "serve_http"]


class Connection(TCPServer):
    """One client connection: hypercorn's, sending each chunk straight to the socket when it can
    (see the module docstring).

    Attributes:
        direct_sends: chunks the socket took whole at once (tests and the bench read it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stream = self.stream
        raw = getattr(getattr(stream, "socket", None), "_sock", None) if type(stream) is trio.SocketStream else None
        self._raw = raw if isinstance(raw, socket.socket) and not raw.getblocking() else None
        self.direct_sends = 0

    async def protocol_send(self, event: Event) -> None:
        """hypercorn's ``protocol_send``; a :class:`RawData` on a plain-TCP connection with no send
        in progress is written with one non-blocking ``send`` first (no lock, no scope, no
        scheduler round when the socket takes it all)."""
        raw = self._raw
        if raw is not None and type(event) is RawData and not self.send_lock.locked():
            data = event.data
            try:
                sent = raw.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # reset, broken pipe, closed: what the original maps to Closed
                await self.protocol.handle(Closed())
                return
            if sent == len(data):
                self.direct_sends += 1
                return
            event = RawData(data=data[sent:])  # the rest waits for the socket, under the lock
        await super().protocol_send(event)


async def serve_http(
    app: Any,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI ``app`` as ``hypercorn.trio.serve(app, config, shutdown_trigger=…)`` does,
    with :class:`Connection` for each connection (TCP and TLS; no QUIC, no ``max_requests``).

    ``task_status`` receives the bound URLs (``["http://127.0.0.1:8080"]``) once listening. When
    ``shutdown_trigger`` returns: stop accepting, give open connections ``config.graceful_timeout``
    seconds, run the lifespan shutdown, return.

    Raises:
        OSError: a socket could not be bound (hypercorn's own error, inside an exception group).
    """
    wrapped = wrap_app(app, config.wsgi_max_body_size, None)
    state: dict = {}
    lifespan = Lifespan(wrapped, config, state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            sockets = config.create_sockets()
            ssl_context = config.create_ssl_context()
            listeners: list[trio.abc.Listener] = []
            urls = []
            for secure, found in ((True, sockets.secure_sockets), (False, sockets.insecure_sockets)):
                for sock in found:
                    sock.listen(config.backlog)
                    listener: trio.abc.Listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                    if secure:
                        listener = trio.SSLListener(listener, ssl_context, https_compatible=True)
                    listeners.append(listener)
                    urls.append(f"{'https' if secure else 'http'}://{repr_socket_addr(sock.family, sock.getsockname())}")
            task_status.started(urls)
            handler = partial(Connection, wrapped, config, context, ConnectionState(state.copy()))
            try:
                async with trio.open_nursery(strict_exception_groups=True) as nursery:
                    nursery.start_soon(raise_shutdown, shutdown_trigger)
                    nursery.start_soon(raise_shutdown, context.terminate.wait)
                    nursery.start_soon(
                        partial(trio.serve_listeners, handler, listeners, handler_nursery=server_nursery)
                    )
                    await trio.sleep_forever()
            except BaseExceptionGroup as group:
                _, others = group.split((ShutdownError, KeyboardInterrupt))
                if others is not None:
                    raise others from None
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
