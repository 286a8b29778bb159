"""Pool strategies: pure choosers over the usable accounts (sans-IO).

A :class:`Strategy` gets the usable, non-excluded accounts as :class:`Candidate` values (membership
view plus counters and quota) and returns one id. It may keep its own state (an injected RNG); the
:class:`~codexgw.pool.scheduler.Pool` owns everything else. Round-robin, least-used and random exist;
weighted, quota-aware and pinning strategies plug in the same way (design.md §3 "Pool").
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from codexgw.pool.quota import QuotaSnapshot

__all__ = [
    "ACTIVE",
    "AccountView",
    "Candidate",
    "LeastUsed",
    "RandomChoice",
    "RoundRobin",
    "Strategy",
    "strategy_by_name",
]

ACTIVE = "active"


@dataclass(frozen=True)
class AccountView:
    """What the pool needs to know about one stored account (no secrets).

    Attributes:
        id: the store's account id.
        name: display name (for status output and messages).
        enabled: false when the operator switched the account off.
        status: ``"active"`` is usable; anything else (``"needs_login"`` …) is not.
        weight: relative share for weighted strategies (unused by round-robin).
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
        return self.enabled and self.status == ACTIVE


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


def strategy_by_name(name: str, *, rng: random.Random | None = None) -> Strategy:
    """Return the strategy called ``name`` (``round-robin``, ``least-used``, ``random``).

    Raises:
        ValueError: unknown name, or ``random`` without ``rng``.
    """
    if name == RoundRobin.name:
        return RoundRobin()
    if name == LeastUsed.name:
        return LeastUsed()
    if name == RandomChoice.name:
        if rng is None:
            raise ValueError("the random strategy needs an rng")
        return RandomChoice(rng)
    raise ValueError(f"unknown pool strategy {name!r}; choose round-robin, least-used or random")
