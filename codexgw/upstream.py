"""The Codex backend client: URLs, headers and the classification of its answers.

This is the one place where httpx errors become codexgw errors (style: translate a library's errors
at one boundary). The HTTP client is handed in (one shared ``httpx.AsyncClient``, HTTP/1.1 per
design §5), so tests can point it anywhere.

Request headers follow what the real Codex client sends (codex-protocol.md §6.2); the body has
already been fixed up by ``translate/`` (§6.3).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import platform
import ssl
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from . import __version__
from .config import CODEX_CLIENT_VERSION
from .errors import UpstreamConnectionError

DEFAULT_ORIGINATOR = "codex_cli_rs"
"""codex-protocol.md §6.2: the default ``originator``."""

RELAYED_REQUEST_HEADERS = (
    "x-codex-turn-state",
    "x-codex-turn-metadata",
    "x-codex-window-id",
    "x-codex-beta-features",
    "x-codex-parent-thread-id",
    "x-openai-subagent",
    "x-openai-memgen-request",
    "x-client-request-id",
    "thread-id",
)
"""Client headers passed upstream unchanged (codex-protocol.md §6.2), besides the session id."""

RELAYED_RESPONSE_HEADERS = (
    "openai-model",
    "x-codex-turn-state",
    "x-models-etag",
    "x-reasoning-included",
    "x-request-id",
    "x-oai-request-id",
)
"""Upstream response headers passed back to the client (codex-protocol.md §7)."""


def user_agent(originator: str = DEFAULT_ORIGINATOR) -> str:
    """Return a Codex-style ``User-Agent`` (codex-protocol.md §6.2) tagged with codexgw's version."""
    system = f"{platform.system()} {platform.release()}".strip()
    return f"{originator}/{CODEX_CLIENT_VERSION} ({system}; {platform.machine()}) codexgw/{__version__}"


def responses_headers(
    *,
    access_token: str,
    chatgpt_account_id: str | None,
    session_id: str,
    fedramp: bool = False,
    client_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the headers of ``POST {upstream}/codex/responses`` (codex-protocol.md §6.2).

    Args:
        access_token: the account's OAuth access token.
        chatgpt_account_id: the id_token's ``chatgpt_account_id`` (``ChatGPT-Account-ID``).
        session_id: conversation id for prompt caching (the client's, or one derived by the caller).
        fedramp: add ``X-OpenAI-Fedramp: true`` for FedRAMP accounts (§4).
        client_headers: the client's request headers (any case); the Codex turn headers among them
            are relayed, and a Codex client's ``originator`` is kept.

    Returns:
        A dict of header names to values.
    """
    lower = {k.lower(): v for k, v in (client_headers or {}).items()}
    originator = lower.get("originator") or DEFAULT_ORIGINATOR
    headers = {
        "authorization": f"Bearer {access_token}",
        "originator": originator,
        "user-agent": user_agent(originator),
        "version": CODEX_CLIENT_VERSION,
        "session_id": session_id,
        "accept": "text/event-stream",
        "content-type": "application/json",
    }
    if chatgpt_account_id:
        headers["chatgpt-account-id"] = chatgpt_account_id
    if fedramp:
        headers["x-openai-fedramp"] = "true"
    for name in RELAYED_REQUEST_HEADERS:
        value = lower.get(name)
        if value is not None:
            headers[name] = value
    return headers


def plain_headers(*, access_token: str, chatgpt_account_id: str | None) -> dict[str, str]:
    """Headers for the non-streaming backend calls (models, usage; codex-protocol.md §6.1)."""
    headers = {
        "authorization": f"Bearer {access_token}",
        "user-agent": user_agent(),
        "accept": "application/json",
    }
    if chatgpt_account_id:
        headers["chatgpt-account-id"] = chatgpt_account_id
    return headers


@dataclass(frozen=True)
class Failure:
    """How one non-2xx upstream answer should be handled (sans-IO result of :func:`classify`).

    Attributes:
        kind: ``"usage_limit"`` (429 usage_limit_reached / usage_not_included: cool the account down),
            ``"rate_limited"`` (other 429: cool down), ``"unauthorized"`` (401: refresh, retry once),
            ``"account"`` (403 and similar: this account cannot serve, try another),
            ``"server"`` (5xx: try another account), ``"client"`` (other 4xx: the request itself is
            wrong; relay to the client, no failover).
        status: the upstream HTTP status.
        body: the parsed JSON body, or ``None``.
        message: a short human description (no secrets).
    """

    kind: str
    status: int
    body: Any
    message: str


def parse_json_body(content: bytes) -> Any:
    """Parse an upstream body as JSON, or return ``None`` when it is not JSON."""
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def error_message(body: Any, content: bytes, status: int) -> str:
    """Extract a readable message from an upstream error body (``error.message``, ``detail``, text)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
        if isinstance(body.get("detail"), str):
            return body["detail"]
        if isinstance(body.get("message"), str):
            return body["message"]
    text = content[:200].decode("utf-8", "replace").strip()
    if "<html" in text.lower() or not text:
        return f"upstream answered HTTP {status}"
    return text


def classify(status: int, content: bytes) -> Failure:
    """Classify a non-2xx answer from ``/codex/responses`` (codex-protocol.md §8.3).

    Args:
        status: HTTP status (not 2xx).
        content: the raw response body.

    Returns:
        A :class:`Failure` telling the relay whether to refresh, cool down, fail over or relay.
    """
    body = parse_json_body(content)
    message = error_message(body, content, status)
    error = body.get("error") if isinstance(body, dict) else None
    error_type = error.get("type") if isinstance(error, dict) else None
    if status == 429:
        if error_type in ("usage_limit_reached", "usage_not_included"):
            return Failure("usage_limit", status, body, message)
        return Failure("rate_limited", status, body, message)
    if status == 401:
        return Failure("unauthorized", status, body, message)
    if status in (402, 403):
        return Failure("account", status, body, message)
    if status >= 500 or status in (408, 409):
        return Failure("server", status, body, message)
    return Failure("client", status, body, message)


def transport_error(exc: httpx.HTTPError) -> UpstreamConnectionError:
    """Map an httpx error to :class:`UpstreamConnectionError` (never includes request headers)."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamConnectionError(f"the Codex backend timed out ({type(exc).__name__})")
    return UpstreamConnectionError(f"the Codex backend could not be reached ({type(exc).__name__})")


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


UPSTREAM_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=100)
"""Per pool: uncapped (see :func:`new_http_client`)."""

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
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=100)
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


CLOUDFLARE_COOKIES = frozenset(
    {"__cf_bm", "__cflb", "__cfruid", "__cfseq", "__cfwaitingroom", "_cfuvid", "cf_clearance"}
)
"""The only cookies the Codex client keeps and sends (codex-protocol.md §6.2)."""


class CloudflareOnly(http.cookiejar.DefaultCookiePolicy):
    """A cookie policy that accepts Cloudflare's cookies only (codex-protocol.md §6.2).

    The standard rules (domain, path, expiry) still apply, so a cookie set by chatgpt.com goes back
    to chatgpt.com only. Any other cookie (a backend session cookie, say) is refused: in a pool it
    would follow every account.
    """

    def set_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return cookie.name in CLOUDFLARE_COOKIES and super().set_ok(cookie, request)


def cloudflare_jar() -> http.cookiejar.CookieJar:
    """An empty jar with the :class:`CloudflareOnly` policy: the process-wide jar of the Codex client."""
    return http.cookiejar.CookieJar(policy=CloudflareOnly())


class CloudflareCookieJar:
    """Applies a :func:`cloudflare_jar` to requests sent without the client (:class:`UpstreamSender`)."""

    def __init__(self, jar: http.cookiejar.CookieJar | None = None) -> None:
        self.cookies = httpx.Cookies(jar if jar is not None else cloudflare_jar())

    def absorb(self, response: httpx.Response) -> None:
        """Keep the Cloudflare cookies ``response`` sets (its ``request`` must be set)."""
        if "set-cookie" in response.headers:
            self.cookies.extract_cookies(response)

    def apply(self, request: httpx.Request) -> None:
        """Add a ``Cookie`` header with the kept cookies that match ``request``'s URL, if any."""
        if len(self.cookies.jar):
            self.cookies.set_cookie_header(request)


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
            httpx.HTTPError: the request could not be sent or its response head not read.
        """
        body = _SentOnce(content)
        headers = {**headers, "content-length": str(len(content))}
        try:
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
        finally:
            body.release()


class _SentOnce(httpx.AsyncByteStream):
    """A request body that :meth:`release` drops (HTTP/1.1 sends it whole before the response head)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._content:
            yield self._content

    def release(self) -> None:
        self._content = b""
