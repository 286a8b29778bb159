"""Raw ASGI plumbing for the fake: one parsed request, and a responder that writes answers.

The fake is a plain ASGI app (no framework) so it shares nothing with codexgw's Quart stack and so
it can do what a framework hides: cut a chunked body mid-stream, or notice the client leaving.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import trio

try:  # optional, as in codexgw's own [zstd] extra
    import zstandard
except ImportError:  # pragma: no cover - exercised only where zstandard is missing
    zstandard = None

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 64 * 1024 * 1024


class BodyError(Exception):
    """The request body could not be read or decoded; ``status`` and ``detail`` say why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Request:
    """One HTTP request with its body fully read (and decompressed, see :func:`decode_body`)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    origin: str
    """``scheme://host[:port]`` the client addressed, e.g. ``http://127.0.0.1:5555``."""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError (json.JSONDecodeError) if it is not."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (last value wins)."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


def decode_body(raw: bytes, encoding: str) -> bytes:
    """Undo ``Content-Encoding`` (zstd, gzip, deflate, identity; codex-protocol.md §6.2).

    Raises:
        BodyError: 415 for an unknown encoding, 400 for a body that does not decode.
    """
    encoding = encoding.strip().lower()
    try:
        if encoding in ("", "identity"):
            return raw
        if encoding == "zstd":
            if zstandard is None:
                raise BodyError(415, "zstd request bodies need the zstandard package")
            with zstandard.ZstdDecompressor().stream_reader(raw) as reader:
                return reader.read()
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
    except BodyError:
        raise
    except Exception as exc:
        raise BodyError(400, f"Could not decode request body ({encoding}): {exc}") from exc
    raise BodyError(415, f"Unsupported Content-Encoding: {encoding}")


async def read_request(scope: Scope, receive: Receive) -> Request:
    """Read the whole body and build a :class:`Request`.

    Raises:
        BodyError: body too large, or undecodable (see :func:`decode_body`).
        trio.Cancelled: never by itself; a disconnect mid-body ends with a short body.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyError(413, "Request body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    host = headers.get("host") or "{}:{}".format(*scope.get("server") or ("127.0.0.1", 80))
    request = Request(
        method=scope["method"].upper(),
        path=scope["path"],
        query=query,
        headers=headers,
        body=b"",
        origin=f"{scope.get('scheme', 'http')}://{host}",
    )
    request.body = decode_body(b"".join(chunks), headers.get("content-encoding", ""))
    return request


def _encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers]


class Responder:
    """Writes one answer through ASGI ``send``; tracks whether the client went away."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.started = False
        self.client_gone = False

    async def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.started = True
        await self._send(
            {"type": "http.response.start", "status": status, "headers": _encode_headers(headers)}
        )

    async def body(self, data: bytes, *, more: bool) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def raw(self, status: int, body: bytes, content_type: str, headers: Iterable = ()) -> None:
        all_headers = [("content-type", content_type), ("content-length", str(len(body))), *headers]
        await self.start(status, all_headers)
        await self.body(body, more=False)

    async def json(self, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        await self.raw(status, data, "application/json", headers)

    async def redirect(self, location: str) -> None:
        await self.raw(302, b"", "text/html; charset=utf-8", [("location", location)])

    async def watch_disconnect(self, cancel_scope: trio.CancelScope) -> None:
        """Cancel ``cancel_scope`` when the client disconnects (ASGI ``http.disconnect``)."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                cancel_scope.cancel()
                return
