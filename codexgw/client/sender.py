"""Sending the relay's requests straight to the sharded transport (or through the client under a proxy)."""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator, Mapping

import httpx

from codexgw.client.cookies import CloudflareCookieJar
from codexgw.client.errors import mapped
from codexgw.client.transport import ShardedTransport


class UpstreamSender:
    """Sends the relay's requests (``POST /codex/responses`` and ``/responses/compact``).

    When no proxy is configured in the environment (``urllib.request.getproxies()`` is empty, the
    source httpx reads too), requests go straight to ``sharded``: httpx's public transport API, without
    the client's per-request layers (auth, redirects, cookie and header merging, a wrapping stream
    per response) that cost about 130 µs of CPU per request (bench, issue 7). Cookies then follow
    the Codex client's rule (:class:`CloudflareCookieJar`). Otherwise, or without ``sharded``,
    requests go through ``client`` and its proxy mounts.

    Args:
        client: the shared client (its default headers and timeout apply on both paths).
        sharded: the transport mounted in ``client`` for direct connections, or ``None``.
    """

    def __init__(self, client: httpx.AsyncClient, sharded: ShardedTransport | None = None) -> None:
        self.client = client
        self.direct = sharded if sharded is not None and not urllib.request.getproxies() else None
        self.cookies = CloudflareCookieJar(client.cookies.jar)  # one jar for the process, as Codex keeps
        self._defaults = {name.lower(): value for name, value in client.headers.items()}
        self._timeout = client.timeout.as_dict()

    async def send(self, url: httpx.URL, *, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """``POST url`` and return the response as soon as its headers arrive (body unread: the caller
        must ``aclose()`` it).

        The request body is dropped once sent: the request lives as long as the response, and a
        Codex request carries the whole conversation (often hundreds of KB) while the answer may
        stream for minutes.

        Args:
            headers: lower-case names; they override the client's defaults.

        Raises:
            UpstreamConnectionError: the request could not be sent or its response head not read.
        """
        body = _SentOnce(content)
        headers = {**headers, "content-length": str(len(content))}
        try:
            with mapped():
                return await self._send(url, body, headers)
        finally:
            body.release()

    async def _send(self, url: httpx.URL, body: _SentOnce, headers: dict[str, str]) -> httpx.Response:
        if self.direct is None:
            request = self.client.build_request("POST", url, headers=headers)
            request.stream = body
            return await self.client.send(request, stream=True)
        request = httpx.Request(  # with stream=, httpx adds no header itself: Host is ours to set
            "POST",
            url,
            headers={"host": url.netloc.decode("ascii"), **self._defaults, **headers},
            stream=body,
            extensions={"timeout": self._timeout},
        )
        self.cookies.apply(request)
        response = await self.direct.handle_async_request(request)
        response.request = request
        self.cookies.absorb(response)
        return response


class _SentOnce(httpx.AsyncByteStream):
    """A request body that :meth:`release` drops (HTTP/1.1 sends it whole before the response head)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._content:
            yield self._content

    def release(self) -> None:
        self._content = b""
