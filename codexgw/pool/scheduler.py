"""The pool decision core: which account serves the next request (sans-IO).

Theory of operation
-------------------
The :class:`Pool` holds two kinds of data per account:

* **membership**, owned by the store: :class:`AccountView` (enabled, status, weight, plan). The shell
  replaces it wholesale with :meth:`Pool.set_accounts` whenever the store changes; runtime state of ids
  that remain is kept, state (and session bindings) of removed ids is dropped.
* **runtime state**, owned here: a cooldown (``until`` epoch s, a reason, and whether a quota reading
  may end it early), the latest :class:`~codexgw.pool.quota.QuotaSnapshot`, and counters (picks,
  requests, errors, last error, last use).

An account is **usable** at ``now`` when it is enabled, its status is ``"active"``, and it is not
cooling down (a cooldown covers ``now < until``; at ``now == until`` it has ended by itself).

:meth:`Pool.pick` decides in four layers, the first that applies wins:

1. **Pin** (:meth:`Pool.pin`): only the pinned account may serve. When it is not usable (or was
   already tried for this request) the answer is :class:`Unavailable` with its cooldown's remaining
   time, never another account: a pin is strict. Sessions are neither read nor bound while pinned.
2. **Preferred account** (``prefer=``): the account the request asks for (a ``previous_response_id``
   follow-up: its encrypted reasoning belongs to the account that produced it), while it is a member,
   usable and not excluded. With ``session=`` the session is bound to it. It is not counted as a
   pick: a follow-up does not move the account's place in the strategy's rotation.
3. **Affinity** (``session=``, see :mod:`codexgw.pool.affinity`): the account bound to the session,
   while it is usable and not excluded; the hit restarts the binding's TTL.
4. **Strategy** (:mod:`codexgw.pool.strategies`): a pure chooser over the usable accounts not
   excluded by the caller (the accounts that already failed this request). With ``session=`` the
   session is then bound to the chosen account, so when its account cools down or fails the session
   moves and the binding follows it.

An API key's scope (``allowed=``, teams contract §2) bounds all four layers: an account outside it
is never picked, preferred or bound, a pin outside it refuses, and :class:`Unavailable` speaks of
the accounts inside it only.

When nothing is left, :class:`Unavailable` carries the time until the earliest cooldown ends, which
the shell turns into a 503 with ``Retry-After`` (``errors.PoolExhaustedError``). Changing the strategy
(:meth:`Pool.set_strategy`) while pinned stores it; it takes effect when :meth:`Pool.unpin` is called.

Cooldowns and quota combine so that **the latest information wins** (design.md §3 "Pool"):

* :meth:`Pool.cool_down` replaces any cooldown: a 429's stated reset is the truth even when it is
  earlier than what we believed before.
* :meth:`Pool.record_quota` keeps the newest snapshot. If it shows an exhausted window with a future
  reset, the account cools down until that reset; if it shows headroom, a quota-caused cooldown ends
  early (the limit was reset, e.g. the weekly window rolled over). A snapshot only overrides a cooldown
  that was set before it was observed, so the headers of the very 429 that set a cooldown cannot lift it.
  The ``quota`` strategy ranks accounts by the same snapshots.

Nothing here reads the clock or does I/O; every time is epoch seconds passed in as ``now``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from codexgw.pool._state import (
    EMPTY_SCOPE,
    OUT_OF_SCOPE_PIN,
    AccountState,
    Cooldown,
    Recovery,
    free,
    nothing_left,
    pinned_unavailable,
    recoveries,
)
from codexgw.pool.affinity import AffinityTable
from codexgw.pool.quota import QuotaSnapshot
from codexgw.pool.strategies import (
    STRATEGY_NAMES,
    AccountView,
    Candidate,
    LeastUsed,
    QuotaHeadroom,
    RandomChoice,
    RoundRobin,
    Strategy,
    Weighted,
    strategy_by_name,
)

__all__ = [
    "STRATEGY_NAMES",
    "AccountView",
    "AffinityTable",
    "Candidate",
    "Cooldown",
    "LeastUsed",
    "Pick",
    "Pool",
    "QuotaHeadroom",
    "RandomChoice",
    "Recovery",
    "RoundRobin",
    "Strategy",
    "Unavailable",
    "Weighted",
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
            when one is free but was excluded); ``None`` when no account is enabled and active. While
            pinned, about the pinned account alone.
        reason: human text for the 503 message.
    """

    retry_after_s: float | None
    reason: str


class Pool:
    """Account membership, cooldowns, quota and counters; decides which account serves a request.

    Calls about ids that are not (or no longer) members are ignored: a request may finish after its
    account was removed.

    Args:
        strategy: the chooser (default :class:`RoundRobin`).
        rng: the generator for strategies chosen by name (``random``, ``weighted``) in
            :meth:`set_strategy`; default an unseeded :class:`random.Random` (seed it in tests).
        affinity: the session table (default ``AffinityTable()``: 1 h TTL, 100 000 sessions).

    Attributes:
        strategy: the strategy used when not pinned (assign through :meth:`set_strategy`).
        affinity: the session bindings, for the shell to :meth:`~AffinityTable.purge` now and then.
    """

    def __init__(
        self,
        strategy: Strategy | None = None,
        *,
        rng: random.Random | None = None,
        affinity: AffinityTable | None = None,
    ) -> None:
        self.strategy: Strategy = strategy if strategy is not None else RoundRobin()
        self.rng = rng if rng is not None else random.Random()
        self.affinity = affinity if affinity is not None else AffinityTable()
        self._states: dict[int, AccountState] = {}
        self._seq = 0
        self._pinned: int | None = None

    # ------------------------------------------------------------------ membership

    def set_accounts(self, accounts: Iterable[AccountView]) -> None:
        """Replace the membership; keep runtime state of remaining ids, drop state of removed ids.

        The iteration order is the membership order (round-robin tie order, ``snapshot`` order).
        Session bindings to removed ids are dropped; a pin on a removed id stays (strict).

        Raises:
            ValueError: two views share an id.
        """
        new: dict[int, AccountState] = {}
        for account in accounts:
            if account.id in new:
                raise ValueError(f"duplicate account id {account.id}")
            old = self._states.get(account.id)
            if old is None:
                new[account.id] = AccountState(account=account)
            else:
                old.account = account
                new[account.id] = old
        for removed in self._states.keys() - new.keys():
            self.affinity.drop_account(removed)
        self._states = new

    @property
    def account_ids(self) -> list[int]:
        """Member ids in membership order."""
        return list(self._states)

    # ------------------------------------------------------------------ strategy and pin

    @property
    def strategy_name(self) -> str:
        """The name of the strategy used when not pinned (``"round-robin"`` …)."""
        return self.strategy.name

    def set_strategy(self, strategy: str | Strategy) -> None:
        """Use ``strategy`` (a name from :data:`STRATEGY_NAMES`, or an instance) from the next pick on.

        While pinned it is stored and takes effect at :meth:`unpin`; the pin stays.

        Raises:
            ValueError: unknown name (the current strategy is kept).
        """
        if isinstance(strategy, str):
            strategy = strategy_by_name(strategy, rng=self.rng)
        self.strategy = strategy

    @property
    def pinned(self) -> int | None:
        """The pinned account id, or ``None``."""
        return self._pinned

    def pin(self, account_id: int) -> None:
        """Serve every request with ``account_id`` only, until :meth:`unpin` (replaces any pin).

        Strict: while that account is unusable, not a member, or already tried for a request,
        :meth:`pick` answers :class:`Unavailable` rather than use another account. Any id is accepted
        (the membership may catch up later).
        """
        self._pinned = account_id

    def unpin(self) -> int | None:
        """End the pin; the strategy (as last set) chooses again. Returns the id that was pinned."""
        pinned, self._pinned = self._pinned, None
        return pinned

    # ------------------------------------------------------------------ picking

    def is_usable(self, account_id: int, *, now: float) -> bool:
        """True when the account is a member, enabled, active and not cooling down at ``now``."""
        state = self._states.get(account_id)
        return state is not None and state.usable(now)

    def pick(
        self,
        *,
        now: float,
        exclude: Collection[int] = (),
        session: str | None = None,
        prefer: int | None = None,
        allowed: Collection[int] | None = None,
    ) -> Pick | Unavailable:
        """Choose an account for a request at ``now`` (epoch s): pin, else preferred, else affinity,
        else strategy; all of it inside ``allowed``.

        Args:
            now: epoch seconds.
            exclude: ids not to use (those that already failed this request).
            session: the request's session key (:func:`codexgw.pool.affinity.session_key`), or
                ``None`` for no affinity.
            prefer: an account id to use first when not pinned, a member, usable and not excluded
                (a ``previous_response_id`` follow-up), or ``None``.
            allowed: the ids the request may use at all (an API key's scope, teams contract §2), or
                ``None`` for every member. Accounts outside it are never picked, bound or counted, a
                pin outside it refuses, and :class:`Unavailable` describes the accounts inside it.

        Returns:
            :class:`Pick`: while pinned, the pinned account; else ``prefer`` when it qualifies (the
            session, if any, bound to it; not counted as a pick); else the session's bound account if
            usable and not excluded (its binding refreshed); else the strategy's choice among usable,
            non-excluded accounts (the session, if any, now bound to it). Picks other than ``prefer``
            are counted. Or :class:`Unavailable` explaining why none is left (see its attributes);
            bindings are kept.
        """
        if self._pinned is not None:
            if allowed is not None and self._pinned not in allowed:
                return Unavailable(None, OUT_OF_SCOPE_PIN)
            refusal = pinned_unavailable(
                self._pinned, self._states.get(self._pinned), now, self._pinned in exclude
            )
            if refusal is not None:
                return Unavailable(*refusal)
            return self._picked(self._pinned)
        if prefer is not None and free(self._states, prefer, exclude, allowed, now):
            if session is not None:
                self.affinity.bind(session, prefer, now)
            return Pick(account_id=prefer)
        if session is not None:
            bound = self.affinity.get(session, now)
            if bound is not None and free(self._states, bound, exclude, allowed, now):
                self.affinity.bind(session, bound, now)
                return self._picked(bound)
        states = [s for s in self._states.values() if allowed is None or s.account.id in allowed]
        candidates = [s.candidate() for s in states if s.usable(now) and s.account.id not in exclude]
        if not candidates:
            if allowed is not None and not states:
                return Unavailable(None, EMPTY_SCOPE)
            return Unavailable(*nothing_left(states, now))
        chosen = self.strategy.choose(candidates, now=now)
        if session is not None:
            self.affinity.bind(session, chosen, now)
        return self._picked(chosen)

    def _picked(self, account_id: int) -> Pick:
        state = self._states[account_id]
        state.picks += 1
        state.last_pick_seq = self._seq
        self._seq += 1
        return Pick(account_id=account_id)

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
        state.cooldown = Cooldown(
            until=until, reason=reason, quota=quota, since=now if now is not None else -math.inf
        )

    def clear_cooldown(
        self, account_id: int, *, why: str = "its cooldown was cleared", before: float = math.inf
    ) -> None:
        """End the account's cooldown now (no-op if none, or if its cause was seen after ``before``,
        epoch s); ``why`` is what :meth:`take_recoveries` reports."""
        state = self._states.get(account_id)
        if state is not None and state.cooldown is not None and state.cooldown.since <= before:
            state.seen_cooldown = state.seen_cooldown or state.cooldown  # reported even if never seen
            state.cooldown, state.lifted_by = None, why

    def take_recoveries(self, now: float) -> list[Recovery]:
        """The accounts whose cooldown ended (by itself, or lifted early by a quota reading or
        :meth:`clear_cooldown`) since the last call, for one log line each (``_state.recoveries``)."""
        return recoveries(list(self._states.values()), now)

    def cooldown_of(self, account_id: int, *, now: float) -> tuple[float, str] | None:
        """``(until, reason)`` of a cooldown in force at ``now``, else ``None``."""
        state = self._states.get(account_id)
        if state is None or not state.cooling(now) or state.cooldown is None:
            return None
        return state.cooldown.until, state.cooldown.reason

    def shared_state(self) -> dict[int, tuple[Cooldown | None, QuotaSnapshot | None]]:
        """Per member: the cooldown as set (in force or not: one that ended by itself is no change)
        and the latest quota snapshot; what ``pool/sync.py`` shares between processes."""
        return {i: (s.cooldown, s.quota) for i, s in self._states.items()}

    def learn_cooldown(self, account_id: int, cooldown: Cooldown) -> bool:
        """Take in another process's cooldown when its cause was seen after what we hold (the
        latest word wins, as :meth:`cool_down`). Returns True when it was taken."""
        state = self._states.get(account_id)
        if state is None:
            return False
        held = state.cooldown
        if held is not None and held.since >= cooldown.since:
            return False
        state.cooldown = cooldown
        return True

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
                state.cooldown = Cooldown(until=blocked_until, reason="usage_limit", quota=True, since=now)
        elif current is not None and current.quota and snapshot.shows_headroom:
            state.seen_cooldown = state.seen_cooldown or state.cooldown
            state.cooldown, state.lifted_by = None, "a quota reading shows headroom again"

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
        return [s.row(now) for s in self._states.values()]

    def describe(self, now: float) -> dict[str, Any]:
        """The pool's public state at ``now`` (epoch s), for ``GET /status`` (no secrets).

        Returns:
            ``{"strategy": str (the name used when not pinned), "pinned": int | None (account id),
            "affinity": {"sessions": int (bindings held, expired ones not yet purged included),
            "ttl_s": float}, "accounts": snapshot(now)}``.
        """
        return {
            "strategy": self.strategy_name,
            "pinned": self._pinned,
            "affinity": {"sessions": len(self.affinity), "ttl_s": self.affinity.ttl_s},
            "accounts": self.snapshot(now),
        }
