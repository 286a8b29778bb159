"""The scope of a key: the accounts of the pool its requests may reach (teams contract §1).

The owner's accounts (if the key has an owner), intersected with the key's ``accounts`` (if set);
an unowned key without ``accounts`` is the whole pool (``None``). Everything the pool does for the
key's requests (strategy, affinity, quota, cooldowns, failover, the 429 and 503 answers) happens
inside this set: ``Pool.pick(allowed=...)`` and ``exhausted_answer(scope=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from codexgw.policy.keys import ApiKey

__all__ = ["AccountRef", "key_scope"]


@dataclass(frozen=True)
class AccountRef:
    """What the scope needs of an account: its store id, name and owner (a user name or ``None``)."""

    id: int
    name: str
    owner: str | None


def key_scope(key: ApiKey, accounts: Iterable[AccountRef]) -> frozenset[int] | None:
    """The ids of ``accounts`` that ``key`` may use, or ``None`` for the whole pool.

    An owned key reaches only its owner's accounts; ``key.accounts`` narrows to those names (a name
    that is not, or no longer, in ``accounts`` reaches nothing). The set may be empty: the key's
    requests then get a 503 naming the empty scope.
    """
    if key.owner is None and key.accounts is None:
        return None
    names = set(key.accounts) if key.accounts is not None else None
    return frozenset(
        a.id
        for a in accounts
        if (key.owner is None or a.owner == key.owner) and (names is None or a.name in names)
    )
