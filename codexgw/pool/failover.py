"""Failover decisions (sans-IO): what one failed attempt means for its account and for the request.

The shell (:mod:`codexgw.upstream.failover`) runs an attempt on one account. When it fails before the
client's first byte, the shell describes the failure as data (an :data:`AttemptFailure`), asks
:func:`decide`, and carries out the :class:`Decision` in one place. A decision has one
:class:`Action` (retry the same account once after a refresh, move on, or relay the answer now) and
may also cool the account down (:class:`CoolDown`), mark its status (:class:`MarkStatus`) and carry
a log line. When no account is left, :func:`exhausted_answer` gives the client's answer (its table:
:data:`EXHAUSTED_ANSWER`). No I/O, no clock: the time comes in as ``AttemptState.now`` (epoch s).

The table (the README's failover table; ``tests/test_pool_failover.py`` checks every row). Sources:
codex-protocol.md §8.2 (usage-limit bodies), §8.3 (statuses, ``response.failed`` codes), §12.1 (the
Codex CLI needs a usage limit as HTTP 429 before any stream starts).

=========================================  ====================================================
upstream condition                         decision
=========================================  ====================================================
401 (first in this attempt)                RETRY after a token refresh
401 after that refresh                     mark ``needs_login``; MOVE_ON
token refresh fails                        MOVE_ON (the refresher marks permanent failures)
429 ``usage_limit_reached``                cool down until the reset (quota may lift it);
                                           MOVE_ON, report 429 ``usage_limit_reached``
429/403 ``usage_not_included``             mark ``plan_unsupported``; MOVE_ON
other 429                                  cool down until the reset (``rate_limited``); MOVE_ON
403, account deactivated                   mark ``suspended``; MOVE_ON
403 Cloudflare page                        cool down 60 s (not quota); MOVE_ON
other 402/403                              cool down 300 s (not quota); MOVE_ON
5xx, 408, 409                              MOVE_ON
other 4xx                                  RELAY (status and body)
connection error, timeout, stream cut      MOVE_ON
stream ended before output                 MOVE_ON
failed before output: usage/quota/rate     cool down until the reset (``usage_limit``); MOVE_ON,
(:data:`COOLDOWN_CODES`)                   report 429 ``usage_limit_reached``
… ``usage_not_included``                   mark ``plan_unsupported``; MOVE_ON
… overload, ``server_error``               MOVE_ON
… any other code                           RELAY: the route answers with the stream's error
compaction without a JSON object           MOVE_ON
=========================================  ====================================================
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from codexgw.errors import (
    CodexgwError,
    PoolExhaustedError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UsageLimitError,
)
from codexgw.pool.exhausted import (
    CoolingMix,
    cooling_mix,
    describe,
    earliest_limit,
    in_scope,
    in_words,
    retry_after,
)
from codexgw.pool.health import AccountStatus, health_verdict
from codexgw.pool.quota import cooldown_until, parse_usage_limit_body
from codexgw.pool.scheduler import Unavailable
from codexgw.translate.classify import Failure, FailureKind

COOLDOWN_CODES = frozenset(
    {"usage_limit_reached", "usage_not_included", "insufficient_quota", "rate_limit_exceeded"}
)
"""``response.failed`` codes that, before any output, cool the account down as a usage limit and move
on (``usage_not_included`` marks the account ``plan_unsupported`` instead), codex-protocol.md §8.3."""

FAILOVER_CODES = COOLDOWN_CODES | {"server_is_overloaded", "slow_down", "server_error"}
"""``response.failed`` codes that, before any output, move the request to another account (§8.3)."""

ACCOUNT_REFUSAL_COOLDOWN_S = 300.0
"""Cooldown after a 402/403 that names no known cause, seconds (not quota-related)."""


# ---------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Refused:
    """A non-2xx HTTP answer: ``failure`` as classified (:func:`~codexgw.translate.classify.classify`),
    its ``headers`` (any case; read for 429 resets) and raw ``content`` (a Cloudflare page is HTML)."""

    failure: Failure
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""


@dataclass(frozen=True)
class TransportFailed:
    """The request could not be sent, its answer not read, or the stream broke before output;
    ``error`` is the error mapped at the client boundary (``client.errors.transport_error``)."""

    error: CodexgwError


@dataclass(frozen=True)
class FailedBeforeOutput:
    """A 200 stream whose first event after the preliminaries is ``response.failed`` or ``error``;
    ``error`` is its error object (``{"code", "type", "message", "resets_at", …}`` or empty; §7, §8.3)."""

    error: Mapping[str, Any]


@dataclass(frozen=True)
class EndedBeforeOutput:
    """A 200 stream that ended cleanly before any output or terminal event."""


@dataclass(frozen=True)
class RefreshFailed:
    """Refreshing the token failed (before the request or after a 401); ``detail``: its one line."""

    detail: str


@dataclass(frozen=True)
class NoJsonObject:
    """``/codex/responses/compact`` answered 200 without a JSON object (codex-protocol.md §6.1)."""


AttemptFailure = (
    Refused | TransportFailed | FailedBeforeOutput | EndedBeforeOutput | RefreshFailed | NoJsonObject
)
"""Every way an attempt can fail before the client's first byte."""


@dataclass(frozen=True)
class AttemptState:
    """What :func:`decide` needs to know about the attempt besides the failure.

    Attributes:
        account: the account's name (for messages and log lines).
        plan_type: the account's stored plan (``"plus"``, ``"pro"`` …) or ``None``.
        now: when the failure was observed, epoch seconds.
        refreshed: the token was already refreshed after a 401 in this attempt.
        default_cooldown_s: cooldown when a 429 names no reset, seconds (``Settings.default_cooldown_s``).
    """

    account: str
    plan_type: str | None
    now: float
    refreshed: bool = False
    default_cooldown_s: float = 60.0


# ---------------------------------------------------------------------------------------- outputs


class Action(StrEnum):
    """What happens to the request after a failed attempt."""

    RETRY = "retry"
    """Refresh the token and retry the same account (once per attempt)."""
    MOVE_ON = "move_on"
    """Try another account; ``Decision.error`` is reported if none is left."""
    RELAY = "relay"
    """Answer the client now: with ``Decision.error``, or (``error`` ``None``, a failed stream) the
    route relays the stream's own error."""


@dataclass(frozen=True)
class CoolDown:
    """Rest the account until ``until`` (epoch s): ``Pool.cool_down(until, reason, now=since, quota)``.

    ``reason`` is shown in ``/status`` (``"usage_limit"``, ``"rate_limited"``, ``"cloudflare"``,
    ``"HTTP 403"``); ``quota`` says a quota reading with headroom may end it early; ``since`` is when
    its cause was observed (epoch s).
    """

    until: float
    reason: str
    quota: bool
    since: float


@dataclass(frozen=True)
class MarkStatus:
    """Store a new account status (``Gateway.set_health``): out of rotation until a new login."""

    status: AccountStatus
    reason: str


@dataclass(frozen=True)
class Decision:
    """What to do after one failed attempt (see the module's table).

    Attributes:
        action: retry, move on or relay (:class:`Action`).
        error: for ``MOVE_ON`` the error to report if no account is left; for ``RELAY`` the answer
            (``None``: the failed stream carries it); ``None`` for ``RETRY``.
        cool_down: rest the account, or ``None``.
        mark: change the account's stored status, or ``None``.
        warning: one log line for the operator (no secrets), or ``None``.
    """

    action: Action
    error: CodexgwError | None = None
    cool_down: CoolDown | None = None
    mark: MarkStatus | None = None
    warning: str | None = None


RETRY = Decision(Action.RETRY)


def _move_on(error: CodexgwError, **kw: Any) -> Decision:
    return Decision(Action.MOVE_ON, error, **kw)


# ---------------------------------------------------------------------------------------- decide


def decide(failure: AttemptFailure, state: AttemptState) -> Decision:
    """The :class:`Decision` for one failed attempt (``failure``, one of :data:`AttemptFailure`) given
    ``state``: the module's table, row by row. Pure. Raises ``TypeError`` for any other ``failure``.
    """
    name = state.account
    match failure:
        case Refused():
            return _refused(failure, state)
        case FailedBeforeOutput(error=error):
            return _failed_before_output(dict(error), state)
        case TransportFailed(error=error):
            return _move_on(error)
        case EndedBeforeOutput():
            return _move_on(UpstreamConnectionError("the Codex backend closed the stream before any output"))
        case RefreshFailed(detail=detail):
            return _move_on(UpstreamError(f"account {name} could not refresh its login: {detail}"))
        case NoJsonObject():
            return _move_on(UpstreamError("the Codex backend answered the compaction with no JSON object"))
    raise TypeError(f"not an attempt failure: {failure!r}")


def _refused(refused: Refused, state: AttemptState) -> Decision:
    """A non-2xx answer: health verdicts first (``pool/health.py``), then the failure's kind (§8.3)."""
    failure, now, name = refused.failure, state.now, state.account
    if failure.kind is FailureKind.UNAUTHORIZED and not state.refreshed:
        return RETRY
    verdict = health_verdict(failure.status, refused.content, failure.body, refreshed=state.refreshed)
    if verdict is not None:
        mark = MarkStatus(verdict.status, verdict.reason) if verdict.status is not None else None
        cool, warning = None, None
        if verdict.backoff_s is not None:
            cool = CoolDown(now + verdict.backoff_s, "cloudflare", quota=False, since=now)
            warning = f"account {name}: {verdict.reason}; backing off {verdict.backoff_s:.0f} s"
        error: CodexgwError
        if verdict.status is AccountStatus.PLAN_UNSUPPORTED and isinstance(failure.body, dict):
            error = UpstreamStatusError(failure.message, status=failure.status, body=failure.body)
        else:
            error = UpstreamError(f"account {name} cannot serve: {verdict.reason}")
        return _move_on(error, cool_down=cool, mark=mark, warning=warning)
    if failure.kind in (FailureKind.USAGE_LIMIT, FailureKind.RATE_LIMITED):
        until = _reset_at(state, failure.status, refused.headers, failure.body)
        if failure.kind is FailureKind.USAGE_LIMIT:
            return _usage_limit(state, until=until, body=failure.body, message=failure.message)
        return _move_on(
            UpstreamStatusError(failure.message, status=429, body=failure.body),
            cool_down=CoolDown(until, "rate_limited", quota=True, since=now),
            warning=f"account {name} is rate limited; cooling down for {until - now:.0f} s",
        )
    if failure.kind is FailureKind.ACCOUNT:
        return _move_on(
            UpstreamError(f"the Codex backend refused account {name} (HTTP {failure.status})"),
            cool_down=CoolDown(
                now + ACCOUNT_REFUSAL_COOLDOWN_S, f"HTTP {failure.status}", quota=False, since=now
            ),
        )
    if failure.kind is FailureKind.SERVER:
        return _move_on(UpstreamError(f"the Codex backend answered HTTP {failure.status}: {failure.message}"))
    # CLIENT (an UNAUTHORIZED after a refresh always has the needs_login verdict above)
    return Decision(
        Action.RELAY, UpstreamStatusError(failure.message, status=failure.status, body=failure.body)
    )


def _failed_before_output(error: dict[str, Any], state: AttemptState) -> Decision:
    """A ``response.failed``/``error`` event before output (§8.3 ``response.failed`` codes, §12.1)."""
    code = error.get("code") or error.get("type")
    if code not in FAILOVER_CODES:
        return Decision(Action.RELAY)
    body = {"error": error}
    verdict = health_verdict(429, b"", body)
    if verdict is not None and verdict.status is not None:  # usage_not_included
        return _move_on(
            UpstreamStatusError(verdict.reason, status=429, body=body),
            mark=MarkStatus(verdict.status, verdict.reason),
        )
    if code in COOLDOWN_CODES:
        until = _reset_at(state, 429, {}, body)
        message = str(error.get("message") or "The usage limit has been reached")
        return _usage_limit(state, until=until, body=body, message=message)
    return _move_on(UpstreamError(f"the Codex backend failed before any output ({code})"))


def _reset_at(state: AttemptState, status: int, headers: Mapping[str, str], body: Any) -> float:
    """Until when (epoch s) a 429 rests the account (:func:`~codexgw.pool.quota.cooldown_until`)."""
    return cooldown_until(
        status=status, headers=headers, body=body, now=state.now, default_s=state.default_cooldown_s
    )


def _usage_limit(state: AttemptState, *, until: float, body: Any, message: str) -> Decision:
    """Cool the account down until ``until`` for a usage limit; report the 429 of §8.2."""
    now = state.now
    limit = parse_usage_limit_body(body, now=now)
    plan_type = (limit.plan_type if limit else None) or state.plan_type
    return _move_on(
        UsageLimitError(message, resets_at=until, plan_type=plan_type, now=now),
        cool_down=CoolDown(until, "usage_limit", quota=True, since=now),
        warning=f"account {state.account} hit its usage limit; cooling down for {until - now:.0f} s",
    )


# ---------------------------------------------------------------------------------------- no account left


class ExhaustedAnswer(StrEnum):
    """What the client gets when no account is left but one will be free again: ``USAGE_LIMIT``, a
    429 ``usage_limit_reached`` whose ``resets_at`` is when the earliest account is free (§8.2, §12.1),
    or ``POOL_EXHAUSTED``, a 503 ``no_account_available`` with ``Retry-After``."""

    USAGE_LIMIT = "usage_limit"
    POOL_EXHAUSTED = "pool_exhausted"


EXHAUSTED_ANSWER: Mapping[CoolingMix, ExhaustedAnswer] = {
    CoolingMix.NONE: ExhaustedAnswer.POOL_EXHAUSTED,
    CoolingMix.USAGE_LIMITS: ExhaustedAnswer.USAGE_LIMIT,
    CoolingMix.MIXED: ExhaustedAnswer.POOL_EXHAUSTED,
    CoolingMix.OTHER: ExhaustedAnswer.POOL_EXHAUSTED,
}
"""The answer by why the accounts in scope are out (``exhausted.cooling_mix``), once some will be free.
429 only when each is at its usage limit: the Codex CLI shows it as one and does not retry (§12.1), so
an outage on the others (MIXED) must not look like one. One row per case."""


def exhausted_answer(
    pick: Unavailable,
    rows: Sequence[Mapping[str, Any]],
    last_error: CodexgwError | None,
    *,
    now: float,
    plan_types: Mapping[int, str | None],
    pinned: int | None = None,
    cli: str = "codexgw",
    allowed: Collection[int] | None = None,
) -> CodexgwError:
    """The error to answer with when ``Pool.pick`` said ``pick`` (no account left) at ``now`` (epoch s).

    Pure, never raises. ``rows``: ``Pool.snapshot(now)`` after this request's attempts; ``last_error``:
    the request's last failed attempt's (``None``: none tried); ``plan_types``: account id → stored
    plan; ``pinned``: the pinned id (alone in scope); ``cli``: the command as the user runs it (hints);
    ``allowed``: the ids the request's API key may use (``None``: all): only those rows count, so
    nothing about an account outside the key's scope reaches its client (teams contract §2).

    * Some account will be free again (``pick.retry_after_s`` known): :data:`EXHAUSTED_ANSWER` for
      the accounts in scope. The 429's ``resets_at`` is the earliest reset among them, on the first
      request as on later ones; ``Retry-After`` and the message say the same wait. The 503 names what
      happened to each account and says the ``Retry-After`` it sends.
    * None will (nothing enabled with a valid login): the last error, else a 503 without
      ``Retry-After`` saying how to add (``login``, ``accounts import``) or enable an account.

    Returns:
        :class:`~codexgw.errors.UsageLimitError` (429), :class:`~codexgw.errors.PoolExhaustedError`
        (503) or ``last_error``.
    """
    if allowed is not None:
        rows = [r for r in rows if r.get("id") in allowed]
    if pick.retry_after_s is None:
        if last_error is not None or pinned is not None:
            return last_error or PoolExhaustedError(pick.reason)
        if not rows:
            hint = f"add one with `{cli} login pkce` or `{cli} accounts import PATH`"
        else:
            hint = f"enable one with `{cli} accounts enable NAME` or log in again with `{cli} login pkce`"
        return PoolExhaustedError(f"{pick.reason}; {hint}")
    scope = in_scope(rows, pinned)
    first = earliest_limit(scope)
    if EXHAUSTED_ANSWER[cooling_mix(scope)] is ExhaustedAnswer.USAGE_LIMIT and first is not None:
        resets_at = float(first["cooling_down_until"])
        name = first.get("name") or f"account id {first.get('id')}"
        wait = in_words(resets_at - now)
        message = (
            f"Every account has reached its usage limit; the earliest ({name}) resets in {wait}"
            if len(scope) > 1
            else f"Account {name} has reached its usage limit; it resets in {wait}"
        )
        plan = plan_types.get(first["id"]) or next(
            (plan_types[r["id"]] for r in scope if plan_types.get(r.get("id"))), None
        )
        return UsageLimitError(message, resets_at=resets_at, plan_type=plan, now=now)
    wait_s = pick.retry_after_s
    return PoolExhaustedError(
        f"No account can serve this request now: {describe(scope, rows, now, pinned=pinned)}; "
        f"retry after {retry_after(wait_s)} s",
        retry_after_s=wait_s,
    )
