"""Pool strategies: pure choosers over the usable accounts (sans-IO).

A :class:`Strategy` gets the usable, non-excluded accounts as :class:`Candidate` values (membership
view plus counters and quota) and returns one id. It may keep its own state (an injected RNG); the
:class:`~codexgw.pool.scheduler.Pool` owns everything else, including pinning and session affinity,
which sit above the strategy (design.md §3 "Pool").

The five strategies, by ``name`` (``serve --strategy``):

* ``round-robin`` (:class:`RoundRobin`): least recently picked first.
* ``least-used`` (:class:`LeastUsed`): fewest picks first.
* ``random`` (:class:`RandomChoice`): uniform, from an injected :class:`random.Random`.
* ``weighted`` (:class:`Weighted`): probability proportional to :attr:`AccountView.weight`; weight 0
  makes an account a standby, chosen only when every candidate has weight 0.
* ``quota`` (:class:`QuotaHeadroom`): the most headroom in the account's tighter window, from its
  latest quota snapshot (codex-protocol.md §6.1, §8.1); ties go to the earlier reset.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from codexgw.pool.health import eligible
from codexgw.pool.quota import QuotaSnapshot, Window

__all__ = [
    "STRATEGY_NAMES",
    "AccountView",
    "Candidate",
    "LeastUsed",
    "QuotaHeadroom",
    "RandomChoice",
    "RoundRobin",
    "Strategy",
    "Weighted",
    "strategy_by_name",
]


@dataclass(frozen=True)
class AccountView:
    """What the pool needs to know about one stored account (no secrets).

    Attributes:
        id: the store's account id.
        name: display name (for status output and messages).
        enabled: false when the operator switched the account off.
        status: ``"active"`` is usable; anything else (``"needs_login"`` …) is not.
        weight: relative share for the ``weighted`` strategy (ignored by the others); 0 or less (or
            NaN or infinite) makes the account a standby there.
        plan_type: ``"plus"``, ``"pro"`` … when known.
    """

    id: int
    name: str
    enabled: bool
    status: str
    weight: float = 1.0
    plan_type: str | None = None

    @property
    def eligible(self) -> bool:
        """Enabled and active: usable unless cooling down."""
        return eligible(self.enabled, self.status)


@dataclass(frozen=True)
class Candidate:
    """A usable account and its counters, as handed to :meth:`Strategy.choose`.

    Attributes:
        account: the membership view.
        picks: how often ``pick`` chose it.
        last_pick_seq: pool-wide sequence number of its latest pick (-1 = never picked).
        requests, errors: counts from ``record_result``.
        last_used_at: epoch s of the latest ``record_result``, or ``None``.
        quota: the latest quota snapshot, or ``None``.
    """

    account: AccountView
    picks: int
    last_pick_seq: int
    requests: int
    errors: int
    last_used_at: float | None
    quota: QuotaSnapshot | None


class Strategy(Protocol):
    """Chooses one of the usable candidates (never empty). Must return one of their ids."""

    name: str

    def choose(self, candidates: Sequence[Candidate], *, now: float) -> int: ...


class RoundRobin:
    """Least recently picked first; ties (never picked) in membership order. Gives A, B, C, A, B, C …"""

    name = "round-robin"

    def choose(self, candidates: Sequence[Candidate], *, now: float) -> int:
        return min(candidates, key=lambda c: c.last_pick_seq).account.id


class LeastUsed:
    """Fewest picks first (counted at pick time, so concurrent requests spread); ties round-robin."""

    name = "least-used"

    def choose(self, candidates: Sequence[Candidate], *, now: float) -> int:
        return min(candidates, key=lambda c: (c.picks, c.last_pick_seq)).account.id


class RandomChoice:
    """Uniformly random, from the injected generator (seed it in tests)."""

    name = "random"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def choose(self, candidates: Sequence[Candidate], *, now: float) -> int:
        return self.rng.choice(candidates).account.id


class Weighted:
    """Random, with probability proportional to each candidate's ``account.weight``.

    A weight of 0 (or negative, NaN or infinite) marks a **standby**: never chosen while any candidate
    has a positive weight, and chosen uniformly among the standbys when all candidates are standbys (a
    standby is a last resort, not a disabled account; disable it to keep it out entirely).
    """

    name = "weighted"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def choose(self, candidates: Sequence[Candidate], *, now: float) -> int:
        weights = [_usable_weight(c.account.weight) for c in candidates]
        total = math.fsum(weights)
        if total <= 0.0:
            return self.rng.choice(candidates).account.id
        point = self.rng.random() * total
        chosen = None
        for candidate, weight in zip(candidates, weights, strict=True):
            if weight <= 0.0:
                continue
            chosen = candidate
            point -= weight
            if point < 0.0:
                break
        assert chosen is not None  # total > 0, so some weight is positive
        return chosen.account.id  # rounding at the top end falls to the last positive weight


def _usable_weight(weight: float) -> float:
    return weight if math.isfinite(weight) and weight > 0.0 else 0.0


def _tighter_window(quota: QuotaSnapshot, now: float) -> tuple[float, float]:
    """``(headroom %, resets_at epoch s)`` of the quota's tighter window as of ``now``.

    A window whose ``resets_at`` is at or before ``now`` has rolled over since it was observed and
    counts as 0 % used. The tighter window is the one with the most use; between equally used windows,
    the later reset (headroom comes back only when both have reset). Headroom is ``100 - used``
    clamped to 0-100; ``limit_reached`` means 0. ``resets_at`` is ``inf`` when unknown or rolled over.
    """
    best: tuple[float, float] | None = None
    for window in quota.windows:
        used, resets_at = _effective(window, now)
        key = (used, resets_at)
        if best is None or key > best:
            best = key
    if best is None:
        used, resets_at = 0.0, math.inf
    else:
        used, resets_at = best
    headroom = 0.0 if quota.limit_reached else min(100.0, max(0.0, 100.0 - used))
    return headroom, resets_at


def _effective(window: Window, now: float) -> tuple[float, float]:
    if window.resets_at is not None and window.resets_at <= now:
        return 0.0, math.inf
    return window.used_percent, window.resets_at if window.resets_at is not None else math.inf


class QuotaHeadroom:
    """The candidate with the most headroom in its tighter window (codex-protocol.md §6.1, §8.1).

    Ranking, best first:

    1. headroom % of the tighter window (see :func:`_tighter_window`), higher first; a window that
       has reset since it was observed counts as unused;
    2. the earlier reset of that window (its headroom comes back sooner, so spending it wastes less);
    3. accounts with a quota snapshot before those without one. An account without a snapshot counts
       as full headroom (100 %) with an unknown reset, so it ranks after every known account with
       100 % headroom and before any known account with less: new accounts get traffic (and so
       report their quota in the response headers) once the known ones have been used;
    4. least recently picked (round-robin among equals).
    """

    name = "quota"

    def choose(self, candidates: Sequence[Candidate], *, now: float) -> int:
        return min(candidates, key=lambda c: self._rank(c, now)).account.id

    @staticmethod
    def _rank(candidate: Candidate, now: float) -> tuple[float, float, int, int]:
        if candidate.quota is None:
            return -100.0, math.inf, 1, candidate.last_pick_seq
        headroom, resets_at = _tighter_window(candidate.quota, now)
        return -headroom, resets_at, 0, candidate.last_pick_seq


STRATEGY_NAMES: tuple[str, ...] = (
    RoundRobin.name,
    LeastUsed.name,
    RandomChoice.name,
    Weighted.name,
    QuotaHeadroom.name,
)
"""Every name :func:`strategy_by_name` knows, in documentation order."""


def strategy_by_name(name: str, *, rng: random.Random | None = None) -> Strategy:
    """Return a new strategy called ``name`` (one of :data:`STRATEGY_NAMES`).

    Args:
        name: ``round-robin``, ``least-used``, ``random``, ``weighted`` or ``quota``.
        rng: the generator for ``random`` and ``weighted`` (ignored by the others).

    Raises:
        ValueError: unknown name, or ``random``/``weighted`` without ``rng``.
    """
    if name == RoundRobin.name:
        return RoundRobin()
    if name == LeastUsed.name:
        return LeastUsed()
    if name == QuotaHeadroom.name:
        return QuotaHeadroom()
    if name in (RandomChoice.name, Weighted.name):
        if rng is None:
            raise ValueError(f"the {name} strategy needs an rng")
        return RandomChoice(rng) if name == RandomChoice.name else Weighted(rng)
    raise ValueError(f"unknown pool strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}")
