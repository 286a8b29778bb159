"""The pool's runtime state as rows, and rows back into the pool (sans-IO; ``serve --workers``).

Several processes (the workers of ``serve --workers``, or one ``serve`` and its next start) share
what the pool learns through the store: each account's cooldown and latest quota snapshot, and the
session bindings. :class:`PoolSync` is the pure half: :meth:`PoolSync.outgoing` compares the pool
with what was last shared and returns the changes as :class:`StateRow`/:class:`SessionRow`;
:meth:`PoolSync.apply` takes rows (read from the store, any writer's, ours included) into the
pool. ``upstream/pool_sync.py`` is the shell that writes and reads them.

The rules (the latest word wins, as in :mod:`codexgw.pool.scheduler`):

* a cooldown row replaces ours when its cause was seen (``since``) after our cooldown's, and after
  we last cleared one; a *cleared* row (``until`` ``None``, ``since`` = when it was cleared) ends
  our cooldown when that was set before the clear (``Pool.clear_cooldown(before=)``);
* a quota row goes through ``Pool.record_quota`` (older than ours: ignored), which may set or end a
  quota cooldown exactly as it did where it was observed;
* a session row is ``AffinityTable.learn``'d (the more recent binding wins).

A cooldown that ends by itself is not a change (every process sees its ``until`` pass). Rows we
applied are remembered as shared, so they are never echoed back.

Nothing here reads the clock or does I/O; times are epoch seconds passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from codexgw.pool.quota import QuotaSnapshot
from codexgw.pool.scheduler import Cooldown, Pool

__all__ = ["PoolSync", "SessionRow", "StateRow"]


@dataclass(frozen=True)
class StateRow:
    """One account's shared state.

    Attributes:
        account_id: the account.
        cooldown: the cooldown in force where it was written, or ``None``.
        cleared_at: with no cooldown: when one was cleared (epoch s); ``None``: nothing known.
        quota: the latest quota snapshot, or ``None``.
    """

    account_id: int
    cooldown: Cooldown | None = None
    cleared_at: float | None = None
    quota: QuotaSnapshot | None = None


@dataclass(frozen=True)
class SessionRow:
    """A session binding: ``session`` (a ``session_key``) → ``account_id`` as of ``bound_at`` (epoch s)."""

    session: str
    account_id: int
    bound_at: float


class PoolSync:
    """What this process last shared of one :class:`~codexgw.pool.scheduler.Pool`.

    Args:
        pool: the pool; its affinity table's journal is switched on.
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        if pool.affinity.journal is None:
            pool.affinity.journal = {}
        self._shared: dict[int, tuple[Cooldown | None, float | None]] = {}
        """account id → (the cooldown, the quota's observed_at) as last shared or applied."""
        self._cleared_at: dict[int, float] = {}
        """account id → when we last saw its cooldown cleared here (epoch s)."""

    def outgoing(self, now: float) -> tuple[list[StateRow], list[SessionRow]]:
        """The changes since the last call (or :meth:`apply`): account rows whose cooldown or quota
        changed here, and the journaled session bindings (the journal is emptied). A cooldown gone
        since the last share is a clear at ``now`` (epoch s)."""
        rows = []
        for account_id, (cooldown, quota) in self.pool.shared_state().items():
            seen = (cooldown, quota.observed_at if quota else None)
            last = self._shared.get(account_id)
            if last == seen:
                continue
            self._shared[account_id] = seen
            if last is None and cooldown is None and quota is None:
                continue  # a new member with nothing to tell
            cleared_at = None
            if cooldown is None and last is not None and last[0] is not None:
                cleared_at = self._cleared_at[account_id] = now
            rows.append(StateRow(account_id, cooldown, cleared_at, quota))
        journal = self.pool.affinity.journal or {}
        sessions = [SessionRow(key, account, at) for key, (account, at) in journal.items()]
        journal.clear()
        return rows, sessions

    def apply(self, rows: Iterable[StateRow], sessions: Iterable[SessionRow] = ()) -> int:
        """Take rows read from the store into the pool (see the module docstring). Rows of ids that
        are not members are ignored. Returns how many changed the pool."""
        pool = self.pool
        members = set(pool.account_ids)
        changed = 0
        for row in rows:
            if row.account_id not in members:
                continue
            before = pool.shared_state()[row.account_id]
            last = self._shared.get(row.account_id)
            if row.cooldown is not None:  # first: a snapshot seen with it cannot then override it
                mine = last is not None and last[0] == row.cooldown  # our own, maybe cleared since
                if not mine and row.cooldown.since > self._cleared_at.get(row.account_id, -math.inf):
                    pool.learn_cooldown(row.account_id, row.cooldown)
            elif row.cleared_at is not None:
                pool.clear_cooldown(row.account_id, why="another worker cleared it", before=row.cleared_at)
                self._cleared_at[row.account_id] = max(
                    row.cleared_at, self._cleared_at.get(row.account_id, -math.inf)
                )
            held = before[1]
            if row.quota is not None and (held is None or row.quota.observed_at > held.observed_at):
                pool.record_quota(row.account_id, row.quota)  # the same reading again would re-cool
            after = pool.shared_state()[row.account_id]
            if after != before:  # what a row changed is shared already; a change of ours still goes out
                quota = after[1]
                self._shared[row.account_id] = (after[0], quota.observed_at if quota else None)
                changed += 1
        for session in sessions:
            if session.account_id in members:
                pool.affinity.learn(session.session, session.account_id, session.bound_at)
        return changed
