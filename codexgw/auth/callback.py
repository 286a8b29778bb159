"""The browser login's local callback listener on ``127.0.0.1:1455`` (codex-protocol.md §1).

A tiny HTTP/1.1 server (h11 over trio sockets, one request per connection, ``Connection: close``)
that routes exactly what codex-rs's login server routes:

* ``GET /auth/callback?…``: classified by :func:`codexgw.oauth.pkce.parse_callback`.
  State mismatch → plain-text ``400 State mismatch`` and keep waiting; ``error=…`` or no ``code`` →
  an error page and the login fails (``on_failure``); a code → ``await on_code(code)`` (the token
  exchange) then ``302`` to ``/success``, or an error page with the exchange's message.
* ``GET /success``: the success page; sets :attr:`CallbackServer.success_served`.
* ``GET /cancel``: ``Login cancelled``; the login fails.
* anything else: ``404 Not Found``.

It never ends by itself: the login (``auth/login.py``) runs :meth:`CallbackServer.serve` in its nursery
and cancels it once the login is decided, which closes the socket.
"""

from __future__ import annotations

import errno
import html
from collections.abc import Awaitable, Callable

import h11
import trio

from codexgw.oauth.pkce import parse_callback

__all__ = ["CallbackServer", "PortInUseError", "bind_callback"]

REQUEST_TIMEOUT_S = 10.0
"""A connection that has not sent a full request head within this many seconds is dropped."""
MAX_HEAD_BYTES = 64 * 1024

SUCCESS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Signed in to codexgw</title>
<style>body{font-family:system-ui,sans-serif;margin:4em auto;max-width:34em;color:#222}</style></head>
<body><h1>Signed in</h1><p>codexgw has your ChatGPT login. You can close this tab and return to
the terminal.</p></body></html>
"""

ERROR_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>codexgw sign-in failed</title>
<style>body{{font-family:system-ui,sans-serif;margin:4em auto;max-width:34em;color:#222}}</style></head>
<body><h1>Sign-in failed</h1><p>{message}</p><p>Return to the terminal and run the login again.</p>
</body></html>
"""


class PortInUseError(OSError):
    """The callback port is taken; the message names the likely cause."""


async def bind_callback(port: int, host: str = "127.0.0.1") -> list[trio.SocketListener]:
    """Listen on ``host:port`` (``port`` 0 = any free port).

    Raises:
        PortInUseError: the port is in use (usually another ``codex login`` or codexgw login waiting
            for its browser).
    """
    try:
        return await trio.open_tcp_listeners(port, host=host)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise PortInUseError(
                errno.EADDRINUSE,
                f"port {port} on {host} is already in use, most likely by a running `codex login` "
                "(or another `codexgw login pkce`) waiting for its browser; finish or cancel that "
                "login (Ctrl-C), then try again",
            ) from None
        raise


Response = tuple[int, list[tuple[str, str]], bytes]
"""``(status, headers, body)``."""


def _text(status: int, text: str) -> Response:
    return status, [("Content-Type", "text/plain; charset=utf-8")], text.encode()


def _page(status: int, page: str) -> Response:
    return status, [("Content-Type", "text/html; charset=utf-8")], page.encode()


def error_page(message: str) -> str:
    """The HTML error page for ``message`` (escaped)."""
    return ERROR_PAGE.format(message=html.escape(message))


class CallbackServer:
    """Routes the login callback (see the module docstring).

    Args:
        expected_state: the ``state`` sent in the authorize URL.
        on_code: runs the exchange for a code; returns ``None`` on success or a one-line error message.
        on_failure: called with a one-line message when the login failed (``error=…``, missing code,
            ``/cancel``).
    """

    def __init__(
        self,
        *,
        expected_state: str,
        on_code: Callable[[str], Awaitable[str | None]],
        on_failure: Callable[[str], None],
    ) -> None:
        self._state = expected_state
        self._on_code = on_code
        self._on_failure = on_failure
        self.success_served = trio.Event()

    async def serve(
        self,
        listeners: list[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve connections on ``listeners`` until cancelled; closes them on exit."""
        async with trio.open_nursery() as nursery:
            try:
                task_status.started()
                await trio.serve_listeners(self._connection, listeners, handler_nursery=nursery)
            finally:
                for listener in listeners:
                    await listener.aclose()

    async def route(self, method: str, target: str) -> Response:
        """Answer one request for ``target`` (path and query)."""
        path, _, query = target.partition("?")
        if method not in ("GET", "HEAD"):
            return _text(405, "Method Not Allowed")
        if path == "/auth/callback":
            result = parse_callback(query, self._state)
            if result.kind == "state_mismatch":
                return _text(400, "State mismatch")
            if result.kind == "error":
                message = result.message or "Sign-in failed"
                self._on_failure(message)
                return _page(200, error_page(message))
            assert result.code is not None
            problem = await self._on_code(result.code)
            if problem is not None:
                return _page(200, error_page(problem))
            return 302, [("Location", "/success"), ("Content-Type", "text/plain")], b""
        if path == "/success":
            self.success_served.set()
            return _page(200, SUCCESS_PAGE)
        if path == "/cancel":
            self._on_failure("login cancelled (GET /cancel on the callback port)")
            return _text(200, "Login cancelled")
        return _text(404, "Not Found")

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        try:
            request = await self._read_request(conn, stream)
            if request is None:
                return
            target = request.target.decode("latin-1")
            status, headers, body = await self.route(request.method.decode("latin-1"), target)
            headers = [*headers, ("Content-Length", str(len(body))), ("Connection", "close")]
            data = conn.send(h11.Response(status_code=status, headers=headers))
            if request.method != b"HEAD":
                data += conn.send(h11.Data(data=body)) or b""
            data += conn.send(h11.EndOfMessage()) or b""
            await stream.send_all(data or b"")
        except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    @staticmethod
    async def _read_request(conn: h11.Connection, stream: trio.SocketStream) -> h11.Request | None:
        with trio.move_on_after(REQUEST_TIMEOUT_S):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                    continue
                if isinstance(event, h11.Request):
                    return event
                return None
        return None
