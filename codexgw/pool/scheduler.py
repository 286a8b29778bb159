"""The pool decision core: which account serves the next request (sans-IO).

Theory of operation
-------------------
The :class:`Pool` holds two kinds of data per account:

* **membership**, owned by the store: :class:`AccountView` (enabled, status, weight, plan). The shell
  replaces it wholesale with :meth:`Pool.set_accounts` whenever the store changes; runtime state of ids
  that remain is kept, state of removed ids is dropped.
* **runtime state**, owned here: a cooldown (``until`` epoch s, a reason, and whether a quota reading
  may end it early), the latest :class:`~codexgw.pool.quota.QuotaSnapshot`, and counters (picks,
  requests, errors, last error, last use).

An account is **usable** at ``now`` when it is enabled, its status is ``"active"``, and it is not
cooling down (a cooldown covers ``now < until``; at ``now == until`` it has ended by itself).
:meth:`Pool.pick` filters the usable accounts not excluded by the caller (the accounts that already
failed this request) and asks the :class:`Strategy` to choose one; when none is left it returns
:class:`Unavailable` with the time until the earliest cooldown ends, which the shell turns into a 503
with ``Retry-After`` (``errors.PoolExhaustedError``).

Cooldowns and quota combine so that **the latest information wins** (design.md §3 "Pool"):

* :meth:`Pool.cool_down` replaces any cooldown: a 429's stated reset is the truth even when it is
  earlier than what we believed before.
* :meth:`Pool.record_quota` keeps the newest snapshot. If it shows an exhausted window with a future
  reset, the account cools down until that reset; if it shows headroom, a quota-caused cooldown ends
  early (the limit was reset, e.g. the weekly window rolled over). A snapshot only overrides a cooldown
  that was set before it was observed, so the headers of the very 429 that set a cooldown cannot lift it.

Strategies are pure choosers over the candidates (design.md §3): round-robin (least recently picked),
least-used (fewest picks) and random (an injected :class:`random.Random`). Weighted, quota-aware,
pinning and session affinity plug in as further :class:`Strategy` classes, or as a layer above
:meth:`Pool.pick` (affinity: use the bound account while :meth:`Pool.is_usable` says so, else pick).

Nothing here reads the clock or does I/O; every time is epoch seconds passed in as ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from codexgw.pool.quota import QuotaSnapshot, Window
from codexgw.pool.strategies import (
    AccountView,
    Candidate,
    LeastUsed,
    RandomChoice,
    RoundRobin,
    Strategy,
    strategy_by_name,
)

__all__ = [
    "AccountView",
    "Candidate",
    "LeastUsed",
    "Pick",
    "Pool",
    "RandomChoice",
    "RoundRobin",
    "Strategy",
    "Unavailable",
    "strategy_by_name",
]


@dataclass(frozen=True)
class Pick:
    """``pick`` chose this account."""

    account_id: int


@dataclass(frozen=True)
class Unavailable:
    """``pick`` found no account.

    Attributes:
        retry_after_s: seconds until the earliest eligible (enabled, active) account is free again (0
            when one is free but was excluded); ``None`` when no account is enabled and active.
        reason: human text for the 503 message.
    """

    retry_after_s: float | None
    reason: str


@dataclass
class _Cooldown:
    until: float
    reason: str
    quota: bool
    since: float


@dataclass
class _State:
    account: AccountView
    cooldown: _Cooldown | None = None
    quota: QuotaSnapshot | None = None
    picks: int = 0
    last_pick_seq: int = -1
    requests: int = 0
    errors: int = 0
    last_error: str | None = None
    last_used_at: float | None = None

    def cooling(self, now: float) -> bool:
        return self.cooldown is not None and now < self.cooldown.until


def _window_dict(window: Window | None) -> dict[str, Any] | None:
    if window is None:
        return None
    return {
        "used_percent": window.used_percent,
        "window_minutes": window.window_minutes,
        "resets_at": window.resets_at,
    }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Pool:
    """Account membership, cooldowns, quota and counters; decides which account serves a request.

    Calls about ids that are not (or no longer) members are ignored: a request may finish after its
    account was removed.
    """

    def __init__(self, strategy: Strategy | None = None) -> None:
        self.strategy: Strategy = strategy if strategy is not None else RoundRobin()
        self._states: dict[int, _State] = {}
        self._seq = 0

    # ------------------------------------------------------------------ membership

    def set_accounts(self, accounts: Iterable[AccountView]) -> None:
        """Replace the membership; keep runtime state of remaining ids, drop state of removed ids.

        The iteration order is the membership order (round-robin tie order, ``snapshot`` order).

        Raises:
            ValueError: two views share an id.
        """
        new: dict[int, _State] = {}
        for account in accounts:
            if account.id in new:
                raise ValueError(f"duplicate account id {account.id}")
            old = self._states.get(account.id)
            if old is None:
                new[account.id] = _State(account=account)
            else:
                old.account = account
                new[account.id] = old
        self._states = new

    @property
    def account_ids(self) -> list[int]:
        """Member ids in membership order."""
        return list(self._states)

    # ------------------------------------------------------------------ picking

    def is_usable(self, account_id: int, *, now: float) -> bool:
        """True when the account is a member, enabled, active and not cooling down at ``now``."""
        state = self._states.get(account_id)
        return state is not None and state.account.eligible and not state.cooling(now)

    def pick(self, *, now: float, exclude: Collection[int] = ()) -> Pick | Unavailable:
        """Choose an account for a request at ``now`` (epoch s).

        Args:
            now: epoch seconds.
            exclude: ids not to use (those that already failed this request).

        Returns:
            :class:`Pick` from the strategy among usable, non-excluded accounts, counting the pick; or
            :class:`Unavailable` explaining why none is left (see its attributes).
        """
        candidates = [
            Candidate(
                account=s.account,
                picks=s.picks,
                last_pick_seq=s.last_pick_seq,
                requests=s.requests,
                errors=s.errors,
                last_used_at=s.last_used_at,
                quota=s.quota,
            )
            for s in self._states.values()
            if s.account.eligible and not s.cooling(now) and s.account.id not in exclude
        ]
        if not candidates:
            return self._unavailable(now, exclude)
        chosen = self.strategy.choose(candidates, now=now)
        state = self._states[chosen]
        state.picks += 1
        state.last_pick_seq = self._seq
        self._seq += 1
        return Pick(account_id=chosen)

    def _unavailable(self, now: float, exclude: Collection[int]) -> Unavailable:
        if not self._states:
            return Unavailable(retry_after_s=None, reason="no accounts configured")
        eligible = [s for s in self._states.values() if s.account.eligible]
        if not eligible:
            return Unavailable(retry_after_s=None, reason="all accounts are disabled or need login")
        waits = [max(0.0, s.cooldown.until - now) if s.cooling(now) and s.cooldown else 0.0 for s in eligible]
        earliest = min(waits)
        cooling = sum(1 for s in eligible if s.cooling(now))
        tried = len(eligible) - cooling
        free_in = f"{math.ceil(earliest)} s"
        if tried == 0:
            if len(eligible) == 1:
                reason = f"the only usable account is cooling down; it is free in {free_in}"
            else:
                reason = f"all {len(eligible)} accounts are cooling down; the earliest is free in {free_in}"
        elif cooling == 0:
            reason = f"every usable account was already tried for this request ({_plural(tried, 'account')})"
        else:
            reason = (
                f"{_plural(tried, 'account')} already tried for this request and {cooling} cooling down; "
                f"the earliest is free in {math.ceil(min(w for w in waits if w > 0))} s"
            )
        unusable = len(self._states) - len(eligible)
        if unusable:
            reason += f" ({unusable} more disabled or needing login)"
        return Unavailable(retry_after_s=earliest, reason=reason)

    # ------------------------------------------------------------------ cooldowns

    def cool_down(
        self,
        account_id: int,
        *,
        until: float,
        reason: str,
        now: float | None = None,
        quota: bool = True,
    ) -> None:
        """Rest the account until ``until`` (epoch s), replacing any cooldown (the latest word wins).

        Args:
            until: epoch seconds; the account is usable again at ``now >= until``.
            reason: short human text (e.g. ``"usage_limit_reached"``) shown in ``snapshot``.
            now: when the cause was observed (epoch s). Quota snapshots observed at or before it cannot
                lift or replace this cooldown. Pass it; without it any later snapshot may.
            quota: the cooldown stems from a usage or rate limit, so a quota snapshot showing headroom
                may end it early. Pass ``False`` for cooldowns after errors (5xx, refresh trouble).
        """
        state = self._states.get(account_id)
        if state is None:
            return
        state.cooldown = _Cooldown(
            until=until, reason=reason, quota=quota, since=now if now is not None else -math.inf
        )

    def clear_cooldown(self, account_id: int) -> None:
        """End the account's cooldown now (no-op if none)."""
        state = self._states.get(account_id)
        if state is not None:
            state.cooldown = None

    def cooldown_of(self, account_id: int, *, now: float) -> tuple[float, str] | None:
        """``(until, reason)`` of a cooldown in force at ``now``, else ``None``."""
        state = self._states.get(account_id)
        if state is None or not state.cooling(now) or state.cooldown is None:
            return None
        return state.cooldown.until, state.cooldown.reason

    # ------------------------------------------------------------------ quota and results

    def record_quota(self, account_id: int, snapshot: QuotaSnapshot) -> None:
        """Store a quota reading and let it move the cooldown (codex-protocol.md §6.1, §8.1).

        Snapshots older than the stored one are ignored. With ``now = snapshot.observed_at``:

        * an exhausted window with a future reset (``snapshot.exhausted_until(now)``) sets a quota
          cooldown until that reset, unless a cooldown set after the observation is in force, or a
          non-quota cooldown ends later;
        * a snapshot showing headroom (``shows_headroom``) ends a quota cooldown set before it.
        """
        state = self._states.get(account_id)
        if state is None:
            return
        if state.quota is not None and snapshot.observed_at < state.quota.observed_at:
            return
        state.quota = snapshot
        now = snapshot.observed_at
        current = state.cooldown if state.cooling(now) else None
        if current is not None and current.since >= now:
            return  # newer information already decided
        blocked_until = snapshot.exhausted_until(now)
        if blocked_until is not None:
            if current is None or current.quota or current.until < blocked_until:
                state.cooldown = _Cooldown(until=blocked_until, reason="usage_limit", quota=True, since=now)
        elif current is not None and current.quota and snapshot.shows_headroom:
            state.cooldown = None

    def record_result(self, account_id: int, *, ok: bool, now: float, error: str | None = None) -> None:
        """Count a finished request: ``requests`` (+1), ``errors`` (+1 unless ``ok``), ``last_error``
        (set to ``error`` on failure), ``last_used_at = now`` (epoch s)."""
        state = self._states.get(account_id)
        if state is None:
            return
        state.requests += 1
        state.last_used_at = now
        if not ok:
            state.errors += 1
            state.last_error = error

    # ------------------------------------------------------------------ status

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        """Public per-account state at ``now``, in membership order (no secrets).

        Returns:
            ``[{"id", "name", "enabled", "status", "weight", "plan_type", "usable",
            "cooling_down_until" (epoch s | None), "cooldown_reason" (str | None), "picks", "requests",
            "errors", "last_error", "last_used_at" (epoch s | None), "quota": None | {"observed_at",
            "plan_type", "limit_reached", "headroom_percent", "primary", "secondary"}}]`` where each
            window is ``None | {"used_percent", "window_minutes", "resets_at"}``.
        """
        rows = []
        for s in self._states.values():
            cooling = s.cooling(now) and s.cooldown is not None
            quota = s.quota
            rows.append(
                {
                    "id": s.account.id,
                    "name": s.account.name,
                    "enabled": s.account.enabled,
                    "status": s.account.status,
                    "weight": s.account.weight,
                    "plan_type": s.account.plan_type or (quota.plan_type if quota else None),
                    "usable": s.account.eligible and not cooling,
                    "cooling_down_until": s.cooldown.until if cooling and s.cooldown else None,
                    "cooldown_reason": s.cooldown.reason if cooling and s.cooldown else None,
                    "picks": s.picks,
                    "requests": s.requests,
                    "errors": s.errors,
                    "last_error": s.last_error,
                    "last_used_at": s.last_used_at,
                    "quota": None
                    if quota is None
                    else {
                        "observed_at": quota.observed_at,
                        "plan_type": quota.plan_type,
                        "limit_reached": quota.limit_reached,
                        "headroom_percent": quota.headroom_percent,
                        "primary": _window_dict(quota.primary),
                        "secondary": _window_dict(quota.secondary),
                    },
                }
            )
        return rows
