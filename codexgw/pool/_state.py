"""Per-account runtime state of the pool and its public rendering (private to :mod:`.scheduler`)."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from codexgw.pool.quota import QuotaSnapshot, Window
from codexgw.pool.strategies import AccountView, Candidate

OUT_OF_SCOPE_PIN = "the pool is pinned to an account outside this API key's scope"
"""``Unavailable.reason`` when the pin is outside the request's ``allowed`` accounts."""
EMPTY_SCOPE = "no account is in this API key's scope (its owner has none, or its accounts are gone)"
"""``Unavailable.reason`` when the request's ``allowed`` accounts hold no member."""


@dataclass
class Cooldown:
    """A rest period: usable again at ``now >= until`` (epoch s); ``since`` = when its cause was seen."""

    until: float
    reason: str
    quota: bool
    since: float


@dataclass
class AccountState:
    """Membership view plus the runtime state the pool owns for one account."""

    account: AccountView
    cooldown: Cooldown | None = None
    quota: QuotaSnapshot | None = None
    picks: int = 0
    last_pick_seq: int = -1
    requests: int = 0
    errors: int = 0
    last_error: str | None = None
    last_used_at: float | None = None
    seen_cooldown: Cooldown | None = None
    """The cooldown in force at the last :func:`recoveries` (what a recovery is measured against)."""
    lifted_by: str | None = None
    """Why the cooldown was ended early (a quota reading, ``accounts reset``), until the next
    :func:`recoveries`."""

    def cooling(self, now: float) -> bool:
        """True while a cooldown covers ``now`` (epoch s)."""
        return self.cooldown is not None and now < self.cooldown.until

    def usable(self, now: float) -> bool:
        """Enabled, active and not cooling down at ``now``."""
        return self.account.eligible and not self.cooling(now)

    def candidate(self) -> Candidate:
        """The view handed to strategies."""
        return Candidate(
            account=self.account,
            picks=self.picks,
            last_pick_seq=self.last_pick_seq,
            requests=self.requests,
            errors=self.errors,
            last_used_at=self.last_used_at,
            quota=self.quota,
        )

    def row(self, now: float) -> dict[str, Any]:
        """One ``Pool.snapshot`` row (shape documented there)."""
        cooldown = self.cooldown if self.cooling(now) else None
        quota = self.quota
        return {
            "id": self.account.id,
            "name": self.account.name,
            "enabled": self.account.enabled,
            "status": self.account.status,
            "weight": self.account.weight,
            "plan_type": self.account.plan_type or (quota.plan_type if quota else None),
            "usable": self.account.eligible and cooldown is None,
            "cooling_down_until": cooldown.until if cooldown else None,
            "cooldown_reason": cooldown.reason if cooldown else None,
            "picks": self.picks,
            "requests": self.requests,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_used_at": self.last_used_at,
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


def free(
    states: dict[int, AccountState],
    account_id: int,
    exclude: Collection[int],
    allowed: Collection[int] | None,
    now: float,
) -> bool:
    """The account is a member, usable at ``now``, not excluded, and inside ``allowed`` (when given)."""
    state = states.get(account_id)
    return (
        state is not None
        and account_id not in exclude
        and (allowed is None or account_id in allowed)
        and state.usable(now)
    )


def nothing_left(states: list[AccountState], now: float) -> tuple[float | None, str]:
    """``(retry_after_s, reason)`` when no member could be picked at ``now`` (see ``Unavailable``)."""
    if not states:
        return None, "no accounts configured"
    eligible = [s for s in states if s.account.eligible]
    if not eligible:
        return None, "all accounts are disabled or need login"
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
    unusable = len(states) - len(eligible)
    if unusable:
        reason += f" ({unusable} more disabled or needing login)"
    return earliest, reason


def pinned_unavailable(
    account_id: int, state: AccountState | None, now: float, excluded: bool
) -> tuple[float | None, str] | None:
    """``(retry_after_s, reason)`` when the pinned account cannot serve at ``now``; ``None`` when it can."""
    if state is None:
        return None, f"the pinned account (id {account_id}) is not configured"
    name = state.account.name
    if not state.account.eligible:
        what = "is disabled" if not state.account.enabled else f"has status {state.account.status!r}"
        return None, f"the pinned account {name} {what}; unpin it to use the others"
    if state.cooling(now) and state.cooldown is not None:
        wait = state.cooldown.until - now
        return wait, (
            f"the pinned account {name} is cooling down ({state.cooldown.reason}); "
            f"it is free in {math.ceil(wait)} s"
        )
    if excluded:
        return 0.0, f"the pinned account {name} was already tried for this request"
    return None


@dataclass(frozen=True)
class Recovery:
    """An account that was cooling down at the previous :meth:`Pool.take_recoveries` and is not now.

    Attributes:
        account_id, name: the account.
        reason: the cooldown's reason (``"usage_limit"`` …).
        why: what ended it: ``"its cooldown ended"``, or what lifted it early.
    """

    account_id: int
    name: str
    reason: str
    why: str


def recoveries(states: list[AccountState], now: float) -> list[Recovery]:
    """The accounts whose cooldown ended since the last call (see :class:`Recovery`); remembers the
    cooldowns in force at ``now`` (epoch s) for the next call."""
    found = []
    for state in states:
        current = state.cooldown if state.cooling(now) else None
        seen = state.seen_cooldown
        if seen is not None and current is None:
            why = state.lifted_by or "its cooldown ended"
            found.append(Recovery(state.account.id, state.account.name, seen.reason, why))
        state.seen_cooldown, state.lifted_by = current, None
    return found
