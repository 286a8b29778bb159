"""The shared httpx client and its sharded connection pools (HTTP/1.1 per design §5)."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable

import httpx

from codexgw.client.cookies import cloudflare_jar

POOL_SHARDS = 128
"""How many connection pools the upstream client may spread its connections over (:class:`ShardedTransport`)."""


STREAMS_PER_POOL = 2
"""In-flight requests per pool before one more pool joins the turn (:class:`ShardedTransport`)."""


class ShardedTransport(httpx.AsyncBaseTransport):
    """httpx's own :class:`httpx.AsyncHTTPTransport`, ``shards`` times over, taken in turn as the load needs.

    httpcore 1.0's pool re-scans every pooled connection (with a readability poll for each idle one)
    twice per request and again when each response closes: O(n) per request in the number of
    connections, O(n²) in its keep-alive eviction (encode/httpcore#1035, still open). Over HTTP/1.1
    every open stream holds one connection, so with 2000 streams open each new one cost about 14 ms
    of CPU in that scan alone (bench ``hold``). Spreading the connections over pools bounds each
    scan and keeps every line of HTTP in the library.

    Requests take pools in turn among as many as the load needs: with ``n`` requests in flight,
    pools ``0 .. n // per_pool`` (at most ``shards``). Light traffic stays on the first pool and
    keeps reusing its warm keep-alive connections (a TLS handshake to the real backend costs tens
    of ms); heavy traffic spreads evenly, whatever the streams' lengths. A request is in flight
    from ``handle_async_request`` until its response stream is closed.

    Args:
        shards: number of pools (>= 1).
        per_pool: in-flight requests per pool before one more pool joins the turn (>= 1).
        limits: per pool; ``max_connections=None`` leaves the pools uncapped.
        verify: one TLS context shared by every pool (building one per pool costs a CA-bundle load).
    """

    def __init__(
        self,
        *,
        shards: int = POOL_SHARDS,
        per_pool: int = STREAMS_PER_POOL,
        limits: httpx.Limits,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        if shards < 1 or per_pool < 1:
            raise ValueError("shards and per_pool must be >= 1")
        self.pools = [
            httpx.AsyncHTTPTransport(verify=verify, limits=limits, http2=False) for _ in range(shards)
        ]
        self.in_flight = [0] * shards
        """Requests in flight per pool."""
        self._per_pool = per_pool
        self._total = 0
        self._turn = 0

    def _choose(self) -> int:
        # Round robin over as many pools as the load needs: pools 0..k-1 with k = in flight // per_pool + 1.
        k = min(self._total // self._per_pool + 1, len(self.pools))
        self._turn = (self._turn + 1) % k
        return self._turn

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self._choose()
        self.in_flight[index] += 1
        self._total += 1
        try:
            response = await self.pools[index].handle_async_request(request)
        except BaseException:
            self._done(index)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _InFlight(response.stream, self._done, index)
        return response

    def _done(self, index: int) -> None:
        self.in_flight[index] -= 1
        self._total -= 1

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


class _InFlight(httpx.AsyncByteStream):
    """A response stream that calls ``done(index)`` once, when closed.

    Iteration is the wrapped stream's own iterator (no extra generator layer per chunk).
    """

    def __init__(self, stream: httpx.AsyncByteStream, done: Callable[[int], None], index: int) -> None:
        self._stream = stream
        self._done: Callable[[int], None] | None = done
        self._index = index

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        done, self._done = self._done, None
        try:
            await self._stream.aclose()
        finally:
            if done is not None:
                done(self._index)


UPSTREAM_KEEPALIVE_EXPIRY_S = 90.0
"""Seconds an idle upstream connection is kept for the next request: hyper's default pool idle
timeout (90 s; reqwest, the Codex CLI's HTTP client, keeps it), well under the 400 s Cloudflare
keeps an idle HTTP/1.1 client connection open in front of the backend (Cloudflare's "Connection
limits" reference). httpx's default, 5 s, dropped the warm connection between an agent's turns (a
tool call often runs longer), so the next turn paid a new TCP and TLS handshake: round trips to
the real backend, and ~4 ms more TTFB even on this machine's loopback (README "Paced events")."""


UPSTREAM_LIMITS = httpx.Limits(
    max_connections=None, max_keepalive_connections=100, keepalive_expiry=UPSTREAM_KEEPALIVE_EXPIRY_S
)
"""Per pool: uncapped (see :func:`new_http_client`), idle connections kept :data:`UPSTREAM_KEEPALIVE_EXPIRY_S`."""


UPSTREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=30.0, pool=10.0)
"""``read`` (300 s) is the stream idle timeout of codex-protocol.md §8.4; httpx's default 5 s would
cut a model that thinks silently."""


def new_http_client(
    *, max_connections: int | None = None, sharded: ShardedTransport | None = None
) -> httpx.AsyncClient:
    """Create the shared upstream client: HTTP/1.1 (design §5), pooled, stream-friendly timeouts.

    Over HTTP/1.1 every open stream holds one upstream connection, so the pool is not capped by
    default (a cap of 1000 made the 1001st concurrent stream wait 10 s and fail in the bench); the
    process's file-descriptor limit is the real bound. ``sharded`` is the caller's
    :class:`ShardedTransport` (so that an :class:`UpstreamSender` can share it); without it one is
    made here, each of its pools capped at ``max_connections``.

    Direct connections go through the sharded pools, mounted at ``all://``: httpx's proxy
    environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) keeps its more specific mounts and
    still wins. Under ``ALL_PROXY``, which would share the ``all://`` key, the client is httpx's
    plain one.
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=UPSTREAM_LIMITS.max_keepalive_connections,
        keepalive_expiry=UPSTREAM_LIMITS.keepalive_expiry,
    )
    mounts: dict[str, httpx.AsyncBaseTransport] | None = None
    if not any(os.environ.get(name) for name in ("ALL_PROXY", "all_proxy")):
        if sharded is None:
            sharded = ShardedTransport(limits=limits, verify=httpx.create_ssl_context())
        mounts = {"all://": sharded}
    return httpx.AsyncClient(
        http2=False,
        timeout=UPSTREAM_TIMEOUT,
        limits=limits,
        follow_redirects=False,
        mounts=mounts,
        cookies=cloudflare_jar(),  # Cloudflare's cookies only, for every request (codex-protocol.md §6.2)
    )
