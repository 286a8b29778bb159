"""Open an upstream Responses stream on some account of the pool, failing over before the first byte.

Theory of operation (design §3, codex-protocol.md §8, §12.1): this is the shell around the sans-IO
:mod:`codexgw.pool.failover`, which decides; this module acts.

* An attempt picks an account (``Pool.pick``, with the preferred account of a follow-up first), makes
  sure its token is fresh, and POSTs the body.
* Every way the attempt can fail before the first byte is described as data (a non-2xx answer, a
  transport error, a ``response.failed`` before output, a stream that ended first, a refresh that
  failed) and handed to :func:`~codexgw.pool.failover.decide`. :func:`_carry_out` alone applies the
  :class:`~codexgw.pool.failover.Decision`: the cooldown on the pool, the status through
  ``Gateway.set_health``, the log lines and the failover metric; then the request retries the same
  account (after a 401), moves on, or relays the answer.
* A 200 stream is *peeked*: events are read until the first one that carries output (or ends the
  response). Only then is the stream handed to the route, which sends the first byte; after that no
  failover happens.
* At most ``settings.retries`` moves. When no account is left,
  :func:`~codexgw.pool.failover.exhausted_answer` says what the client gets (429 usage limit, 503
  with ``Retry-After``, or the last upstream error).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import httpx
import trio

from codexgw.client.calls import read_body
from codexgw.config import command_name
from codexgw.errors import CodexgwError, UpstreamConnectionError, UsageLimitError
from codexgw.oauth.tokens import RefreshError
from codexgw.pool.affinity import session_key
from codexgw.pool.failover import (
    Action,
    AttemptFailure,
    AttemptState,
    Decision,
    EndedBeforeOutput,
    FailedBeforeOutput,
    NoJsonObject,
    RefreshFailed,
    Refused,
    TransportFailed,
    decide,
    exhausted_answer,
)
from codexgw.pool.quota import parse_rate_limit_headers
from codexgw.pool.scheduler import Unavailable
from codexgw.store.sqlite import Account
from codexgw.translate.classify import classify, parse_json_body
from codexgw.translate.events import event_json
from codexgw.translate.sse import SSEEvent
from codexgw.upstream.gateway import Gateway
from codexgw.upstream.headers import RELAYED_RESPONSE_HEADERS, header_safe, responses_headers
from codexgw.upstream.stream import UpstreamStream

log = logging.getLogger("codexgw.upstream.failover")
T = TypeVar("T")


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
    scope: frozenset[int] | None = None,
    exclude: frozenset[int] = frozenset(),
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
        scope: the account ids the request's API key may use (``None``: all); picks, failover and
            the exhausted answer stay inside it (teams contract §2).
        exclude: account ids not to try (they already failed this request: ``upstream/collected.py``).

    Returns:
        A peeked :class:`UpstreamStream`; the caller must ``aclose()`` it.

    Raises:
        InvalidRequestError: 400 ``model_not_found``: the known catalogue does not list the model.
        UsageLimitError: 429, every account that could serve hit its usage limit.
        PoolExhaustedError: 503, no account can serve now (``Retry-After`` set when one frees up).
        UpstreamStatusError: the upstream rejected the request itself (relayed status and body).
        UpstreamError: the upstream kept failing on every account tried.
    """
    gw.catalog.check_model(body.get("model"))
    session_id = session_id_for(client_headers, body)
    content = json.dumps(body, separators=(",", ":")).encode()

    async def attempt(account: Account) -> UpstreamStream:
        sent = (
            content if body_for is None else json.dumps(body_for(account.id), separators=(",", ":")).encode()
        )
        response, account, sent_at = await _attempt(
            gw, account, "/codex/responses", sent, session_id, client_headers
        )
        return await _peek(gw, account, response, sent_at)

    return await _failover(
        gw,
        attempt,
        affinity=session_key(client_headers, body),
        prefer_account_id=prefer_account_id,
        scope=scope,
        exclude=exclude,
    )


def dropped(gw: Gateway, account: Account, error: UpstreamConnectionError) -> None:
    """The connection to ``account`` broke after the peek but before anything reached the client (a
    ``stream: false`` answer being collected): carry out :func:`decide`'s verdict on it as on a
    transport failure before output (its metrics and log line; a cooldown if the table says so).

    Raises:
        CodexgwError: the decision is to relay an error rather than move on.
    """
    with contextlib.suppress(_MoveOn):
        _fail(gw, account, TransportFailed(error))


async def post_compact(
    gw: Gateway,
    body: dict[str, Any],
    client_headers: Mapping[str, str],
    *,
    scope: frozenset[int] | None = None,
) -> tuple[Any, Account]:
    """``POST {upstream}/codex/responses/compact`` (codex-protocol.md §6.1): unary JSON, with failover.

    Failover, cooldowns and the errors raised are those of :func:`open_stream` (429 cools the account
    down and moves on, 401 refreshes once, 403/5xx/connection errors move on, other 4xx are relayed).

    Returns:
        ``(parsed JSON body, account that served)``.
    """
    gw.catalog.check_model(body.get("model"))
    session_id = session_id_for(client_headers, body)
    content = json.dumps(body, separators=(",", ":")).encode()

    async def attempt(account: Account) -> tuple[Any, Account]:
        response, account, _sent_at = await _attempt(
            gw,
            account,
            "/codex/responses/compact",
            content,
            session_id,
            client_headers,
            accept="application/json",
        )
        try:
            raw = await read_body(response)
        except UpstreamConnectionError as exc:
            _fail(gw, account, TransportFailed(exc))
        parsed = parse_json_body(raw)
        if not isinstance(parsed, dict):
            _fail(gw, account, NoJsonObject())
        _served(gw, account)
        return parsed, account

    return await _failover(
        gw, attempt, affinity=session_key(client_headers, body), prefer_account_id=None, scope=scope
    )


async def _failover(
    gw: Gateway,
    attempt: Callable[[Account], Awaitable[T]],
    *,
    affinity: str | None,
    prefer_account_id: int | None,
    scope: frozenset[int] | None = None,
    exclude: frozenset[int] = frozenset(),
) -> T:
    """Run ``attempt`` on one account after another until one serves (at most ``retries`` moves).

    The preferred account is offered to ``Pool.pick`` on the first pick only; every pick and the
    exhausted answer stay inside ``scope`` (``None``: the whole pool).
    """
    tried: set[int] = set(exclude)
    last_error: CodexgwError | None = None
    limits: list[UsageLimitError] = []
    moves = 0
    while True:
        pick = gw.pool.pick(
            now=gw.clock(),
            exclude=tried,
            session=affinity,
            prefer=None if len(tried) > len(exclude) else prefer_account_id,
            allowed=scope,
        )
        if moves > gw.settings.retries and not isinstance(pick, Unavailable):
            raise _out_of_moves(limits, last_error, moves)
        if isinstance(pick, Unavailable):  # also out of moves with none left: the pool's answer
            now = gw.clock()
            plan_types = {a.id: a.plan_type for a in gw.accounts.values()}
            raise exhausted_answer(
                pick,
                gw.pool.snapshot(now),
                last_error,
                now=now,
                plan_types=plan_types,
                pinned=gw.pool.pinned,
                cli=command_name(),
                allowed=scope,
            )
        account = gw.accounts[pick.account_id]
        tried.add(account.id)
        try:
            return await attempt(account)
        except _MoveOn as move:
            last_error = move.error
            if isinstance(move.error, UsageLimitError):
                limits.append(move.error)
        moves += 1


def _out_of_moves(limits: list[UsageLimitError], last_error: CodexgwError | None, moves: int) -> CodexgwError:
    """The answer once ``retries`` moves are spent with accounts left untried: when every attempt hit
    a usage limit, the limit that resets first (issue 16: never the latest), else the last error."""
    assert last_error is not None
    if limits and len(limits) == moves:
        known = [e for e in limits if e.resets_at is not None]
        return min(known, key=lambda e: e.resets_at or 0.0) if known else last_error
    return last_error


def _state(
    gw: Gateway, account: Account, *, now: float | None = None, refreshed: bool = False
) -> AttemptState:
    """The facts :func:`decide` needs about this attempt (``now`` defaults to the clock)."""
    return AttemptState(
        account=account.name,
        plan_type=account.plan_type,
        now=gw.clock() if now is None else now,
        refreshed=refreshed,
        default_cooldown_s=gw.settings.default_cooldown_s,
    )


def _carry_out(gw: Gateway, account: Account, decision: Decision) -> None:
    """Apply ``decision`` to ``account``: the one place a failed attempt changes the pool or the account.

    Marks the status (``Gateway.set_health``), sets the cooldown (``Pool.cool_down``) and logs the
    decision's warning. ``MOVE_ON`` then counts the failed request on the account, logs the move and
    counts the failover metric (reason: the error's ``code`` or ``type``).

    Raises:
        _MoveOn: ``MOVE_ON`` (carrying the error to report if no account is left).
        CodexgwError: ``RELAY`` with an error (the answer to relay).
    Returns for ``RETRY`` and for ``RELAY`` of a failed stream (the route relays the stream's error).
    """
    if decision.mark is not None:
        gw.set_health(account, decision.mark.status, decision.mark.reason)
    if decision.cool_down is not None:
        cool = decision.cool_down
        gw.pool.cool_down(account.id, until=cool.until, reason=cool.reason, now=cool.since, quota=cool.quota)
    if decision.warning is not None:
        log.warning("%s", decision.warning)
    error = decision.error
    if decision.action is Action.MOVE_ON:
        assert error is not None
        gw.pool.record_result(account.id, ok=False, now=gw.clock(), error=error.message)
        log.info("account %s could not serve (%s); moving on", account.name, error.message)
        gw.metrics.count_failover(account.name, error.code or error.type)
        raise _MoveOn(error)
    if decision.action is Action.RELAY and error is not None:
        raise error


def _end(gw: Gateway, account: Account, decision: Decision) -> NoReturn:
    """Carry out a decision that ends the attempt (``MOVE_ON``, or ``RELAY`` with an error)."""
    _carry_out(gw, account, decision)
    raise AssertionError(f"{decision.action} did not end the attempt")


def _fail(gw: Gateway, account: Account, failure: AttemptFailure, *, now: float | None = None) -> NoReturn:
    """Decide on a failure that ends the attempt and carry the decision out."""
    _end(gw, account, decide(failure, _state(gw, account, now=now)))


def _served(gw: Gateway, account: Account) -> None:
    """Count a request ``account`` served (before the first byte: no failover after this)."""
    gw.pool.record_result(account.id, ok=True, now=gw.clock())


async def _attempt(
    gw: Gateway,
    account: Account,
    path: str,
    content: bytes,
    session_id: str,
    client_headers: Mapping[str, str],
    *,
    accept: str | None = None,
) -> tuple[httpx.Response, Account, float]:
    """POST ``content`` to ``{upstream}{path}`` on ``account``.

    Returns:
        ``(200 response (unread), the account as refreshed, perf_counter seconds when it was sent)``.

    Raises:
        _MoveOn: this account cannot serve; the relayed error otherwise (see :func:`_carry_out`).
    """
    try:
        account = await gw.fresh(account)
    except (RefreshError, TimeoutError) as exc:
        _fail(gw, account, RefreshFailed(str(exc)))
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
                headers["x-codex-installation-id"] = header_safe(installation)
        url = _upstream_url(gw.settings.upstream_url, path)
        sent_at = time.perf_counter()
        try:
            response = await gw.sender.send(url, content=content, headers=headers)
        except UpstreamConnectionError as exc:
            _fail(gw, account, TransportFailed(exc))
        gw.metrics.observe_upstream(account.name, latency_s=time.perf_counter() - sent_at)
        now = gw.clock()
        gw.record_quota(account.id, parse_rate_limit_headers(response.headers, now=now))
        if response.status_code == 200:
            return response, account, sent_at
        try:
            error_body = await read_body(response)
        except UpstreamConnectionError as exc:
            _fail(gw, account, TransportFailed(exc), now=now)
        refused = Refused(classify(response.status_code, error_body), response.headers, error_body)
        decision = decide(refused, _state(gw, account, now=now, refreshed=refreshed))
        if decision.action is not Action.RETRY:
            _end(gw, account, decision)
        refreshed = True
        try:
            account = await gw.refresh(account, stale_access_token=account.access_token)
        except (RefreshError, TimeoutError) as exc:
            _fail(gw, account, RefreshFailed(str(exc)))


@functools.lru_cache(maxsize=16)
def _upstream_url(base: str, path: str) -> httpx.URL:
    """``{base}{path}`` parsed once (httpx parses a str URL on every request)."""
    return httpx.URL(f"{base}{path}")


async def _peek(gw: Gateway, account: Account, response: httpx.Response, sent_at: float) -> UpstreamStream:
    """Read ``response`` up to its first output event; fail over if it failed before that.

    Returns:
        The stream, its preliminary events kept, for the route (``early_error`` set when a
        ``response.failed`` that is no failover came first).

    Raises:
        _MoveOn: as :func:`_carry_out`.
    """
    headers = {name: response.headers[name] for name in RELAYED_RESPONSE_HEADERS if name in response.headers}
    stream = UpstreamStream(
        account=account,
        response=response,
        headers=headers,
        model=headers.get("openai-model"),
        sent_at=sent_at,
    )
    try:
        first = await stream.peek()
    except UpstreamConnectionError as exc:
        await stream.aclose()
        _fail(gw, account, TransportFailed(exc))
    except BaseException:  # cancelled (the client left): a body read directly is not closed by httpcore
        with trio.CancelScope(shield=True):
            await stream.aclose()
        raise
    if first is None:
        await stream.aclose()
        _fail(gw, account, EndedBeforeOutput())
    kind, event = first
    if kind in ("response.failed", "error"):
        error = _failed_error(event)
        decision = decide(FailedBeforeOutput(error), _state(gw, account))
        if decision.action is not Action.RELAY:
            await stream.aclose()
            _end(gw, account, decision)
        stream.early_error = error  # RELAY: the route answers with it
    _served(gw, account)
    gw.metrics.observe_upstream(account.name, ttfb_s=time.perf_counter() - stream.sent_at)
    stream._on_close = gw.metrics.stream_opened()
    return stream


def _failed_error(event: SSEEvent) -> dict[str, Any]:
    """The error object of a ``response.failed`` (``response.error``) or ``error`` event, or ``{}``."""
    data = event_json(event)
    if data is None:
        return {}
    response = data.get("response")
    error = response.get("error") if isinstance(response, dict) else data.get("error")
    return error if isinstance(error, dict) else {}
