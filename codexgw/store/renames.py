"""What follows a rename (inside the renaming transaction): usage history and keys' account lists.

Usage rows are keyed by the key's and the account's names (teams contract §3), and a key narrowed
to accounts lists their names; a rename carries all of them to the new name. Rows already under
the new name (an account of that name that was removed) are summed, never overwritten. Plain
functions on a ``sqlite3`` connection, so :mod:`codexgw.store.sqlite` can call them.
"""

from __future__ import annotations

import json
import sqlite3

__all__ = ["rename_account_refs", "rename_key_usage"]

_COUNTERS = "requests, errors, input_tokens, cached_tokens, output_tokens, reasoning_tokens"
_SUMS = ", ".join(f"{c} = {c} + excluded.{c}" for c in _COUNTERS.split(", "))


def _move_usage(conn: sqlite3.Connection, column: str, old: str, new: str) -> None:
    others = "hour, key, account, model".replace(column, "?")
    conn.execute(
        f"INSERT INTO usage (hour, key, account, model, {_COUNTERS}) "
        f"SELECT {others}, {_COUNTERS} FROM usage WHERE {column} = ? "
        f"ON CONFLICT (hour, key, account, model) DO UPDATE SET {_SUMS}",
        (new, old),
    )
    conn.execute(f"DELETE FROM usage WHERE {column} = ?", (old,))


def rename_key_usage(conn: sqlite3.Connection, old: str, new: str) -> None:
    """The usage of key ``old`` is now under ``new``."""
    if old != new:
        _move_usage(conn, "key", old, new)


def rename_account_refs(conn: sqlite3.Connection, old: str, new: str) -> None:
    """Account ``old`` is now ``new``: keys narrowed to it and its usage history follow."""
    if old == new:
        return
    for row in conn.execute("SELECT id, accounts FROM api_keys WHERE accounts IS NOT NULL").fetchall():
        try:
            names = json.loads(row["accounts"])
        except ValueError:
            continue
        if isinstance(names, list) and old in names:
            renamed = [new if n == old else n for n in names]
            conn.execute("UPDATE api_keys SET accounts = ? WHERE id = ?", (json.dumps(renamed), row["id"]))
    _move_usage(conn, "account", old, new)
