"""The pool's runtime state in the store: cooldowns, quota snapshots, session bindings (migration 5).

Written in batches by every serving process (``upstream/pool_sync.py``, off the request path) and
read back by the others within a poll (``serve --workers``), and by the next start of ``serve``
(so a restart does not send requests straight back into accounts at their limit, issue 16).

Each batch bumps ``meta.pool_seq`` once and stamps its rows with it; a reader asks for the rows
stamped after the last ``pool_seq`` it saw (:func:`exchange`), which costs one indexed read when
nothing changed. Writes merge field by field, so two processes writing about one account at once
lose nothing: a cooldown replaces the stored one only when its cause was seen later
(``cooldown_since``), a quota snapshot only when observed later, a session binding only when
bound later.

Functions take a :class:`~codexgw.store.sqlite.Store` and are synchronous (the server calls them
through ``trio.to_thread``). Nothing here is secret (session keys are digests).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from codexgw.pool.quota import QuotaSnapshot
from codexgw.pool.scheduler import Cooldown
from codexgw.pool.sync import SessionRow, StateRow
from codexgw.store.sqlite import BUSY_TIMEOUT_S, Store

__all__ = ["Batch", "PoolStateDB", "exchange", "purge_sessions"]

_UPSERT_STATE = """
INSERT INTO pool_state (account_id, cooldown_until, cooldown_reason, cooldown_quota, cooldown_since,
                        quota, quota_at, seq)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (account_id) DO UPDATE SET
    cooldown_until  = CASE WHEN excluded.cooldown_since > coalesce(cooldown_since, -1e308)
                           THEN excluded.cooldown_until ELSE cooldown_until END,
    cooldown_reason = CASE WHEN excluded.cooldown_since > coalesce(cooldown_since, -1e308)
                           THEN excluded.cooldown_reason ELSE cooldown_reason END,
    cooldown_quota  = CASE WHEN excluded.cooldown_since > coalesce(cooldown_since, -1e308)
                           THEN excluded.cooldown_quota ELSE cooldown_quota END,
    cooldown_since  = CASE WHEN excluded.cooldown_since > coalesce(cooldown_since, -1e308)
                           THEN excluded.cooldown_since ELSE cooldown_since END,
    quota    = CASE WHEN excluded.quota_at > coalesce(quota_at, -1e308) THEN excluded.quota ELSE quota END,
    quota_at = CASE WHEN excluded.quota_at > coalesce(quota_at, -1e308) THEN excluded.quota_at ELSE quota_at END,
    seq      = excluded.seq
"""

_UPSERT_SESSION = """
INSERT INTO pool_sessions (session, account_id, bound_at, seq) VALUES (?, ?, ?, ?)
ON CONFLICT (session) DO UPDATE SET
    account_id = CASE WHEN excluded.bound_at >= bound_at THEN excluded.account_id ELSE account_id END,
    bound_at   = max(bound_at, excluded.bound_at),
    seq        = excluded.seq
"""

_FINITE_FLOOR = -1e300
"""``since = -inf`` (a cooldown whose cause time is unknown) is stored as this."""


@dataclass
class Batch:
    """What :func:`exchange` read: rows stamped after ``since`` (any writer's) and the new mark.

    Attributes:
        seq: the ``pool_seq`` to pass as ``since`` next time.
        states, sessions: the rows read (empty when nothing changed).
    """

    seq: int
    states: list[StateRow] = field(default_factory=list)
    sessions: list[SessionRow] = field(default_factory=list)


def _state_params(row: StateRow, seq: int) -> tuple[Any, ...]:
    c = row.cooldown
    if c is not None:
        since = c.since if math.isfinite(c.since) else _FINITE_FLOOR
        cooldown: tuple[Any, ...] = (c.until, c.reason, int(c.quota), since)
    else:
        cooldown = (None, None, None, row.cleared_at)
    q = row.quota
    quota = (json.dumps(q.to_dict()), q.observed_at) if q is not None else (None, None)
    return (row.account_id, *cooldown, *quota, seq)


def _state_row(r: Sequence[Any]) -> StateRow:
    account_id, until, reason, quota_flag, since, quota_text, _quota_at = r
    cooldown = None
    cleared_at = None
    if until is not None and since is not None:
        since_s = -math.inf if since <= _FINITE_FLOOR else float(since)
        cooldown = Cooldown(until=float(until), reason=reason or "", quota=bool(quota_flag), since=since_s)
    elif since is not None:
        cleared_at = float(since)
    snapshot = None
    if quota_text:
        try:
            snapshot = QuotaSnapshot.from_dict(json.loads(quota_text))
        except (ValueError, TypeError):
            snapshot = None
    return StateRow(int(account_id), cooldown, cleared_at, snapshot)


class PoolStateDB:
    """One long-lived connection to the store for the pool-state task (opening one per tick cost
    about 1 ms of CPU; a tick that finds nothing new now costs tens of µs).

    Used by one task at a time, from whichever worker thread ``trio.to_thread`` picks
    (``check_same_thread=False``). Its commits use ``synchronous=NORMAL`` (WAL: a crash of the
    process loses nothing; a power cut may lose the last batches, which are a cache of what the
    upstream said).
    """

    def __init__(self, store: Store) -> None:
        uri = f"file:{quote(str(store.path))}?mode=rw"
        self._conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def exchange(
        self, since: int, states: Sequence[StateRow] = (), sessions: Sequence[SessionRow] = ()
    ) -> Batch:
        """Write one batch (when there is something to write), then read every row stamped after
        ``since`` (``0``: everything, as at start-up). One write transaction and one read.

        Raises:
            sqlite3.Error: the store is locked past its busy timeout or unreadable (the caller
                retries at its next tick; unwritten rows are the caller's to keep).
        """
        conn = self._conn
        written = -1  # the seq of our own batch: alone since ``since``, it is not read back
        if states or sessions:
            conn.execute("BEGIN IMMEDIATE")
            try:
                known = {r[0] for r in conn.execute("SELECT id FROM accounts")}
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'pool_seq'")
                seq = int(conn.execute("SELECT value FROM meta WHERE key = 'pool_seq'").fetchone()[0])
                conn.executemany(
                    _UPSERT_STATE, [_state_params(r, seq) for r in states if r.account_id in known]
                )
                conn.executemany(
                    _UPSERT_SESSION,
                    [(s.session, s.account_id, s.bound_at, seq) for s in sessions if s.account_id in known],
                )
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            written = seq
        row = conn.execute("SELECT value FROM meta WHERE key = 'pool_seq'").fetchone()
        current = int(row[0]) if row else 0
        if current == since or (current == written and since == written - 1):
            # nothing new, or nothing but our own batch (one process: every tick). When others
            # wrote too, our rows are read back with theirs: an upsert merges field by field and
            # moves a row another process wrote to our seq, so only the read tells the merge.
            return Batch(seq=current)
        conn.execute("BEGIN")  # one snapshot for both tables
        try:
            current = int(conn.execute("SELECT value FROM meta WHERE key = 'pool_seq'").fetchone()[0])
            got = conn.execute(
                "SELECT account_id, cooldown_until, cooldown_reason, cooldown_quota, cooldown_since, quota, "
                "quota_at FROM pool_state WHERE seq > ? AND seq <= ?",
                (since, current),
            ).fetchall()
            bound = conn.execute(
                "SELECT session, account_id, bound_at FROM pool_sessions WHERE seq > ? AND seq <= ?",
                (since, current),
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return Batch(
            seq=current,
            states=[_state_row(r) for r in got],
            sessions=[SessionRow(s, int(a), float(b)) for s, a, b in bound],
        )

    def purge_sessions(
        self, *, before: float, keep: int | None = None, guessed: tuple[str, int] | None = None
    ) -> int:
        """Delete the session bindings last bound before ``before`` (epoch s) and trim the rest to
        the affinity table's bounds (rows beyond them would be evicted at once when restored).

        Args:
            before: epoch s; rows bound earlier go.
            keep: keep only this many most recently bound rows among the named ones (among all
                rows when ``guessed`` is ``None``); ``None``: no trim.
            guessed: ``(prefix, n)``: the rows whose session starts with ``prefix`` (the keys
                guessed from a conversation's opening, ``pool/affinity.py::DERIVED_PREFIX``) are a
                budget of their own, trimmed to their ``n`` most recent, so that many one-off
                requests never push a named session out of the store.

        Returns:
            How many rows were deleted.
        """
        conn = self._conn
        dropped = conn.execute("DELETE FROM pool_sessions WHERE bound_at < ?", (before,)).rowcount
        budgets: list[tuple[str, tuple[object, ...], int | None]] = [("1", (), keep)]
        if guessed is not None:
            prefix, n = guessed
            match, args = "substr(session, 1, ?) = ?", (len(prefix), prefix)
            budgets = [(match, args, n), (f"NOT ({match})", args, keep)]
        for where, args, limit in budgets:
            if limit is not None:
                dropped += conn.execute(
                    f"DELETE FROM pool_sessions WHERE {where} AND session NOT IN "
                    f"(SELECT session FROM pool_sessions WHERE {where} ORDER BY bound_at DESC LIMIT ?)",
                    (*args, *args, limit),
                ).rowcount
        return dropped

def exchange(
    store: Store, since: int, states: Sequence[StateRow] = (), sessions: Sequence[SessionRow] = ()
) -> Batch:
    """:meth:`PoolStateDB.exchange` on a connection of its own (the CLI, tests)."""
    db = PoolStateDB(store)
    try:
        return db.exchange(since, states, sessions)
    finally:
        db.close()


def purge_sessions(
    store: Store, *, before: float, keep: int | None = None, guessed: tuple[str, int] | None = None
) -> int:
    """:meth:`PoolStateDB.purge_sessions` on a connection of its own."""
    db = PoolStateDB(store)
    try:
        return db.purge_sessions(before=before, keep=keep, guessed=guessed)
    finally:
        db.close()
