"""The serve nursery's pool-state task: share cooldowns, quota snapshots and session bindings
through the store, and restore them at start (``pool/sync.py`` is the pure half, ``store/pool_state.py``
the SQL).

Every ``interval_s`` (0.25 s) one thread hop writes what changed in this process's pool since the
last tick (one batch, one transaction; nothing when nothing changed) and reads what any process
wrote since the last read (one indexed read of ``meta.pool_seq`` when nothing did). The request
path never waits for the store: it changes the pool in memory as before, and the next tick carries
the change out. So a 429 one worker learns is honoured by every worker within about
``2 × interval_s`` plus the store's write time, and a restarted ``serve`` starts with the
cooldowns and snapshots it had (those written up to its last tick).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

import trio

from codexgw.pool.affinity import DERIVED_PREFIX
from codexgw.pool.scheduler import Pool
from codexgw.pool.sync import PoolSync, SessionRow, StateRow
from codexgw.store.pool_state import PoolStateDB
from codexgw.store.sqlite import Store

__all__ = ["SYNC_INTERVAL_S", "PoolStateSync"]

log = logging.getLogger("codexgw.upstream.pool_sync")

SYNC_INTERVAL_S = 0.25
"""Seconds between two ticks (write the batch, read the others')."""
PURGE_EVERY_S = 300.0
"""Seconds between two purges of session bindings older than the affinity TTL."""


class PoolStateSync:
    """Keeps one process's pool in step with the store (see the module docstring).

    Args:
        store: the account store (``pool_state``, ``pool_sessions``).
        pool: this process's pool (its affinity journal is switched on).
        interval_s: seconds between ticks.
        clock: epoch seconds.

    Attributes:
        applied: rows from the store that changed this pool so far (for tests and ``/status``).
    """

    def __init__(
        self,
        store: Store,
        pool: Pool,
        *,
        interval_s: float = SYNC_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.pool = pool
        self.sync = PoolSync(pool)
        self.interval_s = interval_s
        self.clock = clock
        self.applied = 0
        self._seq = 0
        self._db: PoolStateDB | None = None
        self._unsent: tuple[list[StateRow], list[SessionRow]] = ([], [])

    async def restore(self) -> int:
        """Take in every stored row (at start, once the accounts are loaded). Returns how many
        changed the pool; a store that cannot be read is logged and skipped (nothing restored)."""
        try:
            self._db = await trio.to_thread.run_sync(PoolStateDB, self.store)
            batch = await trio.to_thread.run_sync(self._db.exchange, 0)
        except Exception as exc:
            log.warning("could not restore cooldowns and quota snapshots from the store: %s", exc)
            return 0
        self._seq = batch.seq
        self.sync.outgoing(self.clock())  # what we hold now counts as shared: no echo of it
        changed = self.sync.apply(batch.states, batch.sessions)
        self.sync.outgoing(self.clock())
        cooling = sum(1 for i in self.pool.account_ids if self.pool.cooldown_of(i, now=self.clock()))
        if changed or cooling:
            log.info("restored from the store: %d account states (%d cooling down)", changed, cooling)
        return changed

    async def tick(self) -> None:
        """One write of what changed here and one read of what changed anywhere."""
        states, sessions = self.sync.outgoing(self.clock())
        states = self._unsent[0] + states
        sessions = self._unsent[1] + sessions
        try:
            if self._db is None:
                self._db = await trio.to_thread.run_sync(PoolStateDB, self.store)
            batch = await trio.to_thread.run_sync(self._db.exchange, self._seq, states, sessions)
        except Exception as exc:  # a locked store: keep the rows for the next tick
            self._unsent = (states[-1000:], sessions[-10_000:])
            log.debug("pool state not shared this tick: %s", exc)
            return
        self._unsent = ([], [])
        self._seq = batch.seq
        if batch.states or batch.sessions:
            self.applied += self.sync.apply(batch.states, batch.sessions)

    async def purge(self) -> int:
        """Delete the stored bindings older than the affinity TTL and trim the rest to the table's
        bounds, each budget on its own (named sessions keep ``max_entries``, guessed ``conv-`` ones
        ``derived_max_entries``). Returns how many rows went; a store that cannot be written is
        logged at debug and counts 0 (the next purge tries again)."""
        affinity = self.pool.affinity
        purge = functools.partial(
            PoolStateDB.purge_sessions,
            before=self.clock() - affinity.ttl_s,
            keep=affinity.max_entries,
            guessed=(DERIVED_PREFIX, affinity.derived_max_entries),
        )
        try:
            if self._db is None:
                self._db = await trio.to_thread.run_sync(PoolStateDB, self.store)
            return await trio.to_thread.run_sync(purge, self._db)
        except Exception as exc:
            log.debug("session bindings not purged: %s", exc)
            return 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Restore, report started, then tick every ``interval_s`` forever; on cancellation, one
        last shielded write (what the last moments learned survives a restart)."""
        await self.restore()
        task_status.started()
        next_purge = self.clock() + PURGE_EVERY_S
        try:
            while True:
                await trio.sleep(self.interval_s)
                await self.tick()
                if self.clock() >= next_purge:
                    next_purge = self.clock() + PURGE_EVERY_S
                    await self.purge()
        finally:
            with trio.CancelScope(shield=True):
                await self.tick()
                if self._db is not None:
                    self._db.close()
