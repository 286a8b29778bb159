"""Usage counters in the store (teams contract §3; table ``usage`` of migration step 4).

The server's ledger (:class:`codexgw.policy.usage.Ledger`) is flushed here in batches:
:func:`add_usage` adds a batch and the keys' last use in one transaction and reads today's totals
per key back. :func:`read_usage` sums the rows for the API and the CLI, grouped by hour, day, key,
account or model; what a server holds in memory but has not flushed yet is not in the store (the
server flushes every few seconds and at shutdown).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from codexgw.policy.usage import COUNTERS, Batch
from codexgw.store.sqlite import Store

__all__ = ["GROUPINGS", "add_usage", "read_usage", "today_totals"]

GROUPINGS = ("hour", "day", "key", "account", "model")
"""What ``read_usage(by=...)`` groups by."""

_COLS = ", ".join(COUNTERS)
_SUMS = ", ".join(f"{c} = {c} + excluded.{c}" for c in COUNTERS)
_TOTALS = ", ".join(f"SUM({c}) AS {c}" for c in COUNTERS)


def _totals(conn: Any, day: int) -> dict[str, list[int]]:
    rows = conn.execute(f"SELECT key, {_TOTALS} FROM usage WHERE hour >= ? GROUP BY key", (day,)).fetchall()
    return {r["key"]: [int(r[c] or 0) for c in COUNTERS] for r in rows}


def add_usage(
    store: Store, batch: Batch, last_used: Mapping[str, float], *, day: int
) -> dict[str, list[int]]:
    """Add ``batch`` to the stored counters and set the keys' ``last_used_at``, in one transaction.

    Args:
        batch: counters (in ``COUNTERS`` order) per ``(hour, key, account, model)``.
        last_used: key name → epoch s of its last request.
        day: 00:00 UTC (epoch s) of the day whose totals to return.

    Returns:
        The stored totals per key since ``day`` (after the batch), for ``Ledger.settle``.
    """
    with store._write() as conn:
        conn.executemany(
            f"INSERT INTO usage (hour, key, account, model, {_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (hour, key, account, model) DO UPDATE SET {_SUMS}",
            [(*slot, *values) for slot, values in batch.items()],
        )
        conn.executemany(
            "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE name = ?",
            [(when, name) for name, when in last_used.items()],
        )
        return _totals(conn, day)


def today_totals(store: Store, day: int) -> dict[str, list[int]]:
    """The stored totals per key since ``day`` (00:00 UTC, epoch s)."""
    with store._read() as conn:
        return _totals(conn, day)


def read_usage(
    store: Store,
    *,
    since: float,
    by: str = "day",
    key: str | None = None,
    account: str | None = None,
    model: str | None = None,
    keys: Collection[str] | None = None,
    accounts: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """The counters since ``since`` (epoch s; whole hours from the one holding it), grouped ``by``.

    Args:
        by: one of :data:`GROUPINGS`; ``hour`` and ``day`` buckets are epoch s of their start.
        key, account, model: only rows of this key, account or model.
        keys, accounts: only rows whose key (or account) is in these (what a member may see: rows
            of their keys *or* of their accounts, when both are given).

    Returns:
        ``[{"bucket", "requests", "errors", "input_tokens", "cached_tokens", "output_tokens",
        "reasoning_tokens"}]`` in bucket order.

    Raises:
        ValueError: ``by`` is not one of :data:`GROUPINGS`.
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    bucket = {
        "hour": "hour",
        "day": "(hour - hour % 86400)",
        "key": "key",
        "account": "account",
        "model": "model",
    }[by]
    where, params = ["hour >= ?"], [int(since // 3600) * 3600]
    for column, value in (("key", key), ("account", account), ("model", model)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    visible = []
    for column, names in (("key", keys), ("account", accounts)):
        if names is not None:
            visible.append(f"{column} IN ({', '.join('?' for _ in names)})" if names else "0")
            params.extend(names)
    if visible:
        where.append("(" + " OR ".join(visible) + ")")
    sql = (
        f"SELECT {bucket} AS bucket, {_TOTALS} FROM usage WHERE {' AND '.join(where)} "
        f"GROUP BY bucket ORDER BY bucket"
    )
    with store._read() as conn:
        rows = conn.execute(sql, params).fetchall()
    return [{"bucket": r["bucket"], **{c: int(r[c] or 0) for c in COUNTERS}} for r in rows]
