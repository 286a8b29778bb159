"""Calls into httpx for the layers above ``client/``, with the library's errors mapped
(:mod:`codexgw.client.errors`): unary requests, reading or closing a streamed response, and the
next chunk of a streamed body (the relay's per-chunk read, kept to one function call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from codexgw.client.errors import BACKEND, mapped, transport_error

__all__ = ["close", "get_sync", "next_chunk", "read_body", "request"]


async def request(
    http: httpx.AsyncClient, method: str, url: str, *, peer: str, **kwargs: Any
) -> httpx.Response:
    """``http.request(method, url, **kwargs)`` with its body read.

    Raises:
        UpstreamConnectionError: the request could not be sent or its answer not read (message
            names ``peer``).
    """
    with mapped(peer):
        return await http.request(method, url, **kwargs)


async def read_body(response: httpx.Response, *, peer: str = BACKEND) -> bytes:
    """Read a streamed response's whole body and close it.

    Raises:
        UpstreamConnectionError: the connection broke while reading.
    """
    try:
        with mapped(peer):
            return await response.aread()
    finally:
        await response.aclose()


async def close(response: httpx.Response) -> None:
    """Close a streamed response (aborts its connection when the body was not read to the end)."""
    await response.aclose()


async def next_chunk(chunks: AsyncIterator[bytes], *, peer: str = BACKEND) -> bytes | None:
    """The next chunk of a streamed body, or ``None`` at its end.

    Raises:
        UpstreamConnectionError: the connection broke or timed out.
    """
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None
    except httpx.HTTPError as exc:
        raise transport_error(exc, peer=peer) from None


def get_sync(url: str, *, peer: str, **kwargs: Any) -> httpx.Response:
    """A blocking ``GET`` (for CLI commands that ask a running server).

    Raises:
        UpstreamConnectionError: nothing answered (``connect_failed`` when no connection was made).
    """
    with mapped(peer):
        return httpx.get(url, **kwargs)
