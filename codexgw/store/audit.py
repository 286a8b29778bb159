"""The audit log: who changed what, when (teams contract §4; table ``audit`` of migration step 4).

Every change the CLI or the admin API makes to users, keys, accounts, the pool or the settings is
written with its :class:`Audit` entry *in the same transaction* (:func:`write_audit` on the
writer's connection), so a change is never without its entry nor an entry without its change.
``actor`` is a user name, ``key:<name>``, ``--api-key`` or ``cli:<os user>``; ``detail`` is a
small JSON object of non-secret facts (never a password, key secret or token).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from codexgw.store.sqlite import Store

__all__ = ["Audit", "read_audit", "write_audit"]


@dataclass(frozen=True)
class Audit:
    """One entry to write: ``actor`` did ``action`` (``key.create``, ``user.remove`` …) to ``target``."""

    actor: str
    action: str
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def write_audit(conn: sqlite3.Connection, audit: Audit | None, *, now: float) -> None:
    """Insert ``audit`` (if any) on ``conn``, inside the caller's write transaction."""
    if audit is None:
        return
    conn.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (now, audit.actor, audit.action, audit.target, json.dumps(audit.detail, sort_keys=True, default=str)),
    )


def record(store: Store, audit: Audit, *, now: float) -> None:
    """Write ``audit`` alone, for a change made outside the store (a login's result)."""
    with store._write() as conn:
        write_audit(conn, audit, now=now)


def read_audit(
    store: Store, *, since: float | None = None, limit: int = 1000, actor: str | None = None
) -> list[dict[str, Any]]:
    """Entries newest first: ``[{"at", "actor", "action", "target", "detail"}]``.

    Args:
        since: only entries at or after this epoch time.
        limit: at most this many.
        actor: only this actor's entries (a member sees their own).
    """
    sql = "SELECT at, actor, action, target, detail FROM audit WHERE at >= ?"
    params: list[Any] = [since if since is not None else 0.0]
    if actor is not None:
        sql += " AND actor = ?"
        params.append(actor)
    sql += " ORDER BY at DESC, id DESC LIMIT ?"
    params.append(max(0, int(limit)))
    with store._read() as conn:
        rows = conn.execute(sql, params).fetchall()
    out = []
    for row in rows:
        try:
            detail = json.loads(row["detail"]) if row["detail"] else {}
        except ValueError:
            detail = {}
        out.append(
            {
                "at": row["at"],
                "actor": row["actor"],
                "action": row["action"],
                "target": row["target"],
                "detail": detail,
            }
        )
    return out
