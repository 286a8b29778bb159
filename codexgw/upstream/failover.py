"""Open an upstream Responses stream on some account of the pool, failing over before the first byte.

Theory of operation (design §3, codex-protocol.md §8, §12.1):

* An attempt picks an account (``Pool.pick``), makes sure its token is fresh, and POSTs the body.
* A non-2xx answer is classified (``upstream.classify``): 401 refreshes the token and retries the
  same account once; 429 cools the account down until the reset the upstream gave and moves on;
  403/5xx/connection errors move on; any other 4xx is the request's own fault and is relayed.
* A 200 stream is *peeked*: events are read until the first one that carries output (or ends the
  response). A ``response.failed`` before any output that names a usage limit, a rate limit or an
  overload moves on too, and so does a stream that breaks before output. Only then is the stream
  handed to the route, which sends the first byte; after that no failover happens.
* At most ``settings.retries`` moves. When no account is left: the last usage limit as HTTP 429
  ``usage_limit_reached`` (before any stream starts, so the Codex CLI shows the reset time), or 503
  with ``Retry-After`` while every account cools down, or the last upstream error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from codexgw.client.errors import transport_error
from codexgw.errors import (
    CodexgwError,
    PoolExhaustedError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UsageLimitError,
)
from codexgw.oauth.tokens import RefreshError
from codexgw.pool.affinity import session_key
from codexgw.pool.health import AccountStatus, health_verdict
from codexgw.pool.quota import cooldown_until, parse_rate_limit_headers, parse_usage_limit_body
from codexgw.pool.scheduler import Unavailable
from codexgw.store.sqlite import Account
from codexgw.translate.classify import classify, parse_json_body
from codexgw.translate.events import event_json
from codexgw.translate.sse import SSEEvent
from codexgw.upstream.gateway import Gateway
from codexgw.upstream.headers import RELAYED_RESPONSE_HEADERS, responses_headers
from codexgw.upstream.stream import UpstreamStream

log = logging.getLogger("codexgw.upstream.failover")
T = TypeVar("T")

FAILOVER_CODES = frozenset(
    {
        "usage_limit_reached",
        "usage_not_included",
        "insufficient_quota",
        "rate_limit_exceeded",
        "server_is_overloaded",
        "slow_down",
        "server_error",
    }
)
"""``response.failed`` codes that, before any output, move the request to another account (§8.3)."""

COOLDOWN_CODES = frozenset(
    {"usage_limit_reached", "usage_not_included", "insufficient_quota", "rate_limit_exceeded"}
)


class _MoveOn(Exception):
    """This account cannot serve the request; try another. Carries the error to report if none can."""

    def __init__(self, error: CodexgwError) -> None:
        super().__init__(error.message)
        self.error = error


def session_id_for(client_headers: Mapping[str, str], body: Mapping[str, Any]) -> str:
    """The conversation id sent upstream as ``session_id`` (codex-protocol.md §6.2, design §3).

    The client's ``session-id``/``session_id`` header, else its ``prompt_cache_key``, else a UUID
    derived from the conversation's opening (:func:`codexgw.pool.affinity.session_key`), so that
    every turn of one conversation lands on the same prompt cache.
    """
    lower = {k.lower(): v for k, v in client_headers.items()}
    for name in ("session-id", "session_id"):
        if lower.get(name):
            return lower[name]
    key = body.get("prompt_cache_key")
    if isinstance(key, str) and key:
        return key
    seed = session_key({}, body) or json.dumps(body.get("input"), sort_keys=True, default=str)
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))


async def open_stream(
    gw: Gateway,
    body: dict[str, Any],
    client_headers: Mapping[str, str],
    *,
    prefer_account_id: int | None = None,
    body_for: Callable[[int], dict[str, Any]] | None = None,
) -> UpstreamStream:
    """Open ``POST {upstream}/codex/responses`` for ``body`` on the first account that can serve it.

    Args:
        gw: the gateway state.
        body: the fixed-up Responses request body (``stream: true``, ``store: false``).
        client_headers: the client's request headers (session id and Codex turn headers relayed).
        prefer_account_id: try this account first when it is usable (a ``previous_response_id``
            follow-up: its encrypted reasoning belongs to that account); otherwise the pool picks.
        body_for: when given, the body to send on a given account id (``body`` still names the
            session); lets the caller leave out items only another account can read.

    Returns:
        A peeked :class:`UpstreamStream`; the caller must ``aclose()`` it.

    Raises:
        UsageLimitError: 429, every account that could serve hit its usage limit.
        PoolExhaustedError: 503, no account can serve now (``Retry-After`` set when one frees up).
        UpstreamStatusError: the upstream rejected the request itself (relayed status and body).
        UpstreamError: the upstream kept failing on every account tried.
    """
    session_id = session_id_for(client_headers, body)
    content = json.dumps(body, separators=(",", ":")).encode()

    async def attempt(account: Account) -> UpstreamStream:
        sent = (
            content if body_for is None else json.dumps(body_for(account.id), separators=(",", ":")).encode()
        )
        response, account = await _attempt(gw, account, "/codex/responses", sent, session_id, client_headers)
        return await _peek(gw, account, response)

    return await _failover(
        gw, attempt, affinity=session_key(client_headers, body), prefer_account_id=prefer_account_id
    )


async def post_compact(
    gw: Gateway, body: dict[str, Any], client_headers: Mapping[str, str]
) -> tuple[Any, Account]:
    """``POST {upstream}/codex/responses/compact`` (codex-protocol.md §6.1): unary JSON, with failover.

    Failover, cooldowns and the errors raised are those of :func:`open_stream` (429 cools the account
    down and moves on, 401 refreshes once, 403/5xx/connection errors move on, other 4xx are relayed).

    Returns:
        ``(parsed JSON body, account that served)``.
    """
    session_id = session_id_for(client_headers, body)
    content = json.dumps(body, separators=(",", ":")).encode()

    async def attempt(account: Account) -> tuple[Any, Account]:
        response, account = await _attempt(
            gw,
            account,
            "/codex/responses/compact",
            content,
            session_id,
            client_headers,
            accept="application/json",
        )
        try:
            raw = await response.aread()
        except httpx.HTTPError as exc:
            raise _MoveOn(transport_error(exc)) from None
        finally:
            await response.aclose()
        parsed = parse_json_body(raw)
        if not isinstance(parsed, dict):
            raise _MoveOn(UpstreamError("the Codex backend answered the compaction with no JSON object"))
        gw.pool.record_result(account.id, ok=True, now=gw.clock())
        return parsed, account

    return await _failover(gw, attempt, affinity=session_key(client_headers, body), prefer_account_id=None)


async def _failover(
    gw: Gateway,
    attempt: Callable[[Account], Awaitable[T]],
    *,
    affinity: str | None,
    prefer_account_id: int | None,
) -> T:
    """Run ``attempt`` on one account after another until one serves (at most ``retries`` moves)."""
    tried: set[int] = set()
    last_error: CodexgwError | None = None
    moves = 0
    while True:
        now = gw.clock()
        if (
            prefer_account_id is not None
            and not tried
            and gw.pool.pinned is None
            and prefer_account_id in gw.accounts
            and gw.pool.is_usable(prefer_account_id, now=now)
        ):
            account_id = prefer_account_id
            if affinity is not None:
                gw.pool.affinity.bind(affinity, account_id, now)
        else:
            pick = gw.pool.pick(now=now, exclude=tried, session=affinity)
            if isinstance(pick, Unavailable):
                raise _exhausted(gw, pick, last_error)
            account_id = pick.account_id
        account = gw.accounts[account_id]
        tried.add(account.id)
        try:
            return await attempt(account)
        except _MoveOn as move:
            last_error = move.error
            gw.pool.record_result(account.id, ok=False, now=gw.clock(), error=move.error.message)
            log.info("account %s could not serve (%s); moving on", account.name, move.error.message)
            gw.metrics.count_failover(account.name, move.error.code or move.error.type)
        moves += 1
        if moves > gw.settings.retries:
            raise last_error


async def _attempt(
    gw: Gateway,
    account: Account,
    path: str,
    content: bytes,
    session_id: str,
    client_headers: Mapping[str, str],
    *,
    accept: str | None = None,
) -> tuple[httpx.Response, Account]:
    """POST ``content`` to ``{upstream}{path}`` on ``account``; return the 200 response (unread).

    Raises:
        _MoveOn: this account cannot serve; anything else from :func:`_handle_failure`.
    """
    try:
        account = await gw.fresh(account)
    except (RefreshError, TimeoutError) as exc:
        raise _MoveOn(UpstreamError(f"account {account.name} could not refresh its login: {exc}")) from None
    refreshed = False
    while True:
        headers = responses_headers(
            access_token=account.access_token,
            chatgpt_account_id=account.chatgpt_account_id,
            session_id=session_id,
            fedramp=account.fedramp,
            client_headers=client_headers,
        )
        if accept is not None:
            headers["accept"] = accept
            installation = {k.lower(): v for k, v in client_headers.items()}.get("x-codex-installation-id")
            if installation:  # a header on /responses/compact only (codex-protocol.md §6.2)
                headers["x-codex-installation-id"] = installation
        url = _upstream_url(gw.settings.upstream_url, path)
        sent_at = time.perf_counter()
        try:
            response = await gw.sender.send(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise _MoveOn(transport_error(exc)) from None
        gw.metrics.observe_upstream(account.name, latency_s=time.perf_counter() - sent_at)
        response.extensions["codexgw.sent_at"] = sent_at
        now = gw.clock()
        gw.record_quota(account.id, parse_rate_limit_headers(response.headers, now=now))
        if response.status_code == 200:
            return response, account
        try:
            error_body = await response.aread()
        except httpx.HTTPError as exc:
            raise _MoveOn(transport_error(exc)) from None
        finally:
            await response.aclose()
        failure = classify(response.status_code, error_body)
        if failure.kind == "unauthorized" and not refreshed:
            refreshed = True
            try:
                account = await gw.refresh(account, stale_access_token=account.access_token)
            except (RefreshError, TimeoutError) as exc:
                raise _MoveOn(
                    UpstreamError(f"account {account.name} could not refresh its login: {exc}")
                ) from None
            continue
        _handle_failure(gw, account, failure, response.headers, now, content=error_body, refreshed=refreshed)


@functools.lru_cache(maxsize=16)
def _upstream_url(base: str, path: str) -> httpx.URL:
    """``{base}{path}`` parsed once (httpx parses a str URL on every request)."""
    return httpx.URL(f"{base}{path}")


def _handle_failure(
    gw: Gateway,
    account: Account,
    failure: Any,
    headers: Mapping[str, str],
    now: float,
    *,
    content: bytes = b"",
    refreshed: bool = True,
) -> None:
    """Act on a classified non-2xx answer: always raises (_MoveOn or the error to relay).

    Answers about the account's health come first (``pool/health.py``): 401 after a refresh →
    ``needs_login``, a deactivated 403 → ``suspended``, ``usage_not_included`` → ``plan_unsupported``
    (each stored, logged once), a Cloudflare 403 → a short non-quota cooldown. ``content`` is the raw
    body (HTML pages have no JSON); ``refreshed`` says the token was refreshed for this request.
    """
    verdict = health_verdict(failure.status, content, failure.body, refreshed=refreshed)
    if verdict is not None:
        if verdict.status is not None:
            gw.set_health(account, verdict.status, verdict.reason)
        if verdict.backoff_s is not None:
            gw.pool.cool_down(
                account.id, until=now + verdict.backoff_s, reason="cloudflare", now=now, quota=False
            )
            log.warning("account %s: %s; backing off %.0f s", account.name, verdict.reason, verdict.backoff_s)
        if verdict.status == AccountStatus.PLAN_UNSUPPORTED and isinstance(failure.body, dict):
            raise _MoveOn(UpstreamStatusError(failure.message, status=failure.status, body=failure.body))
        raise _MoveOn(UpstreamError(f"account {account.name} cannot serve: {verdict.reason}"))
    if failure.kind in ("usage_limit", "rate_limited"):
        until = cooldown_until(
            status=failure.status,
            headers=headers,
            body=failure.body,
            now=now,
            default_s=gw.settings.default_cooldown_s,
        )
        if failure.kind == "usage_limit":
            raise _MoveOn(
                _usage_limit(gw, account, until=until, body=failure.body, message=failure.message, now=now)
            )
        gw.pool.cool_down(account.id, until=until, reason=failure.kind, now=now)
        log.warning("account %s is rate limited; cooling down for %.0f s", account.name, until - now)
        raise _MoveOn(UpstreamStatusError(failure.message, status=429, body=failure.body))
    if failure.kind == "unauthorized":
        raise _MoveOn(UpstreamError(f"account {account.name} is not authorized even after a refresh"))
    if failure.kind == "account":
        gw.pool.cool_down(
            account.id, until=now + 300.0, reason=f"HTTP {failure.status}", now=now, quota=False
        )
        raise _MoveOn(
            UpstreamError(f"the Codex backend refused account {account.name} (HTTP {failure.status})")
        )
    if failure.kind == "server":
        raise _MoveOn(UpstreamError(f"the Codex backend answered HTTP {failure.status}: {failure.message}"))
    raise UpstreamStatusError(failure.message, status=failure.status, body=failure.body)


def _usage_limit(
    gw: Gateway, account: Account, *, until: float, body: Any, message: str, now: float
) -> UsageLimitError:
    """Cool ``account`` down until ``until`` for a usage limit and build the 429 to report (§8.2)."""
    gw.pool.cool_down(account.id, until=until, reason="usage_limit", now=now)
    log.warning("account %s hit its usage limit; cooling down for %.0f s", account.name, until - now)
    limit = parse_usage_limit_body(body, now=now)
    plan_type = (limit.plan_type if limit else None) or account.plan_type
    return UsageLimitError(message, resets_at=until, plan_type=plan_type, now=now)


async def _peek(gw: Gateway, account: Account, response: httpx.Response) -> UpstreamStream:
    headers = {name: response.headers[name] for name in RELAYED_RESPONSE_HEADERS if name in response.headers}
    stream = UpstreamStream(
        account=account, response=response, headers=headers, model=headers.get("openai-model")
    )
    try:
        first = await stream.peek()
    except UpstreamConnectionError as exc:
        await stream.aclose()
        raise _MoveOn(exc) from None
    if first is None:
        await stream.aclose()
        raise _MoveOn(UpstreamConnectionError("the Codex backend closed the stream before any output"))
    kind, event = first
    if kind in ("response.failed", "error"):
        error = _failed_error(event)
        code = error.get("code") or error.get("type")
        if code in FAILOVER_CODES:
            await stream.aclose()
            now = gw.clock()
            verdict = health_verdict(429, b"", {"error": error})
            if verdict is not None and verdict.status is not None:  # usage_not_included
                gw.set_health(account, verdict.status, verdict.reason)
                raise _MoveOn(UpstreamStatusError(verdict.reason, status=429, body={"error": error}))
            if code in COOLDOWN_CODES:
                body = {"error": error}
                until = cooldown_until(
                    status=429, headers={}, body=body, now=now, default_s=gw.settings.default_cooldown_s
                )
                message = str(error.get("message") or "The usage limit has been reached")
                raise _MoveOn(_usage_limit(gw, account, until=until, body=body, message=message, now=now))
            raise _MoveOn(UpstreamError(f"the Codex backend failed before any output ({code})"))
        stream.early_error = error
    gw.pool.record_result(account.id, ok=True, now=gw.clock())
    sent_at = response.extensions.get("codexgw.sent_at")
    if isinstance(sent_at, float):
        gw.metrics.observe_upstream(account.name, ttfb_s=time.perf_counter() - sent_at)
    stream._on_close = gw.metrics.stream_opened()
    return stream


def _failed_error(event: SSEEvent) -> dict[str, Any]:
    data = event_json(event)
    if data is None:
        return {}
    response = data.get("response")
    error = response.get("error") if isinstance(response, dict) else data.get("error")
    return error if isinstance(error, dict) else {}


def _exhausted(gw: Gateway, pick: Unavailable, last_error: CodexgwError | None) -> CodexgwError:
    """The error to answer with when no account is left to try."""
    now = gw.clock()
    if isinstance(last_error, UsageLimitError):
        return last_error
    if pick.retry_after_s is not None:
        limits = [
            s
            for s in gw.pool.snapshot(now)
            if s.get("cooling_down_until") and s.get("cooldown_reason") == "usage_limit"
        ]
        cooling = [s for s in gw.pool.snapshot(now) if s.get("cooling_down_until")]
        if limits and len(limits) == len(cooling):
            plan = next((gw.accounts[s["id"]].plan_type for s in limits if s.get("id") in gw.accounts), None)
            return UsageLimitError(
                f"Every account has reached its usage limit; {pick.reason}",
                resets_at=now + pick.retry_after_s,
                plan_type=plan,
                now=now,
            )
        return PoolExhaustedError(pick.reason, retry_after_s=pick.retry_after_s)
    if last_error is not None:
        return last_error
    return PoolExhaustedError(pick.reason)
