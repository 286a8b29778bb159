"""A small WebSocket client for the tests (trio + wsproto, loopback only), speaking as Codex does.

Codex offers ``permessage-deflate; client_max_window_bits`` and no subprotocol, never pings, and
goes away with a bare TCP close (no Close frame); :meth:`WSClient.drop` does that.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate


class Rejected(Exception):
    """The server answered the upgrade with an HTTP status; ``status``, ``body``."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(f"upgrade refused with HTTP {status}")
        self.status, self.headers, self.body = status, headers, body


class WSClient:
    """One client socket. Use :func:`connect`."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self.accept_headers: dict[str, str] = {}
        self.extensions: list[str] = []
        """The extensions the server accepted (e.g. ``permessage-deflate``)."""
        self.closed: CloseConnection | None = None
        self.pings = 0
        self._messages: list[str | bytes] = []
        self._parts: list[Any] = []

    async def send_text(self, text: str) -> None:
        await self.stream.send_all(self.ws.send(TextMessage(data=text)))

    async def send_json(self, payload: Any) -> None:
        await self.send_text(json.dumps(payload))

    async def send_bytes(self, data: bytes) -> None:
        await self.stream.send_all(self.ws.send(BytesMessage(data=data)))

    async def _pump(self) -> bool:
        """Read once from the socket; False at end of stream."""
        data = await self.stream.receive_some(65536)
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, Message):
                self._parts.append(event.data)
                if event.message_finished:
                    joined: Any = (
                        "".join(self._parts) if isinstance(event, TextMessage) else b"".join(self._parts)
                    )
                    self._messages.append(joined)
                    self._parts = []
            elif isinstance(event, Ping):
                self.pings += 1
                await self.stream.send_all(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.closed = event
        return bool(data)

    async def recv(self) -> Any:
        """The next message, JSON-decoded when it is text.

        Raises:
            EOFError: the server closed the socket first (``closed`` holds its Close frame).
        """
        while not self._messages:
            if self.closed is not None or not await self._pump():
                raise EOFError(f"socket closed: {self.closed}")
        message = self._messages.pop(0)
        return json.loads(message) if isinstance(message, str) else message

    async def recv_until(self, kind: str, *, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Messages up to and including the first of type ``kind`` (types in ``skip`` dropped)."""
        out = []
        while True:
            event = await self.recv()
            if event.get("type") in skip:
                continue
            out.append(event)
            if event.get("type") == kind:
                return out

    async def wait_closed(self) -> CloseConnection | None:
        """Read until the server closes (its Close frame, or end of stream)."""
        while self.closed is None and await self._pump():
            pass
        return self.closed

    async def drop(self) -> None:
        """Go away as Codex does: close TCP, no Close frame."""
        await self.stream.aclose()


async def connect(
    base_url: str, path: str = "/v1/responses", headers: dict[str, str] | None = None, *, deflate: bool = True
) -> WSClient:
    """Open a WebSocket to ``base_url`` + ``path`` (``http://127.0.0.1:PORT``).

    Raises:
        Rejected: the server answered the upgrade with an HTTP status.
    """
    url = urlsplit(base_url)
    stream = await trio.open_tcp_stream(url.hostname or "127.0.0.1", url.port or 80)
    ws = WSConnection(ConnectionType.CLIENT)
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    extensions = [PerMessageDeflate()] if deflate else []
    await stream.send_all(
        ws.send(Request(host=url.netloc, target=path, extra_headers=extra, extensions=extensions))
    )
    client = WSClient(stream, ws)
    body = b""
    reject: RejectConnection | None = None
    while True:
        data = await stream.receive_some(65536)
        ws.receive_data(data or None)
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                client.accept_headers = {k.decode().lower(): v.decode() for k, v in event.extra_headers}
                client.extensions = [extension.name for extension in event.extensions]
                return client
            if isinstance(event, RejectConnection):
                reject = event
                if not event.has_body:
                    raise Rejected(event.status_code, _headers(event), b"")
            elif isinstance(event, RejectData):
                body += event.data
                if event.body_finished and reject is not None:
                    await stream.aclose()
                    raise Rejected(reject.status_code, _headers(reject), body)
        if not data:
            raise EOFError("the server closed the connection during the handshake")


def _headers(event: RejectConnection) -> dict[str, str]:
    return {k.decode().lower(): v.decode() for k, v in event.headers}
