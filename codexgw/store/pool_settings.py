"""The pool's persisted choices: scheduling strategy, pinned account, per-account weight.

These live in the store so ``codexgw accounts pin/unpin/strategy/set`` (another process) reach a
running server: every write bumps ``meta.generation`` (triggers of migration step 2, and of step 1
for ``accounts.weight``), which the server polls (``Gateway.watch_store``) and then reloads.

Functions take a :class:`~codexgw.store.sqlite.Store` and are synchronous, like the store itself (the
server calls them through ``trio.to_thread``). Nothing here touches tokens.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from codexgw.store.models import StoreError
from codexgw.store.sqlite import Store

__all__ = ["PoolSettings", "read_pool_settings", "set_pinned", "set_strategy", "set_weight"]

_STRATEGY = "strategy"
_PINNED = "pinned_account_id"


@dataclass(frozen=True)
class PoolSettings:
    """What the store says about scheduling.

    Attributes:
        strategy: a strategy name (``round-robin`` …, see ``pool.strategies.STRATEGY_NAMES``), or
            ``None`` when never chosen (the server keeps its default).
        pinned_account_id: the ``accounts.id`` every request must use, or ``None``.
    """

    strategy: str | None = None
    pinned_account_id: int | None = None


def read_pool_settings(store: Store) -> PoolSettings:
    """Return the stored strategy and pin (defaults when unset or unreadable)."""
    with store._read() as conn:
        rows = dict(conn.execute("SELECT key, value FROM pool_settings").fetchall())
    pinned = rows.get(_PINNED)
    try:
        pinned_id = int(pinned) if pinned is not None else None
    except ValueError:
        pinned_id = None
    return PoolSettings(strategy=rows.get(_STRATEGY) or None, pinned_account_id=pinned_id)


def _put(store: Store, key: str, value: str | None) -> None:
    with store._write() as conn:
        if value is None:
            conn.execute("DELETE FROM pool_settings WHERE key = ?", (key,))
        else:
            conn.execute(
                "INSERT INTO pool_settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value",
                (key, value),
            )


def set_strategy(store: Store, name: str) -> None:
    """Persist the strategy name (validated against ``STRATEGY_NAMES``).

    Raises:
        StoreError: unknown strategy name.
    """
    from codexgw.pool.strategies import STRATEGY_NAMES

    if name not in STRATEGY_NAMES:
        raise StoreError(f"unknown strategy '{name}'; choose one of {', '.join(STRATEGY_NAMES)}")
    _put(store, _STRATEGY, name)


def set_pinned(store: Store, account_id: int | None) -> None:
    """Pin every request to ``account_id`` (strict, no fallback), or unpin with ``None``."""
    _put(store, _PINNED, None if account_id is None else str(int(account_id)))


def set_weight(store: Store, name: str, weight: float, *, now: float | None = None) -> bool:
    """Set account ``name``'s share for the ``weighted`` strategy (1.0 = normal, 0 = standby).

    Returns:
        False if there is no such account.

    Raises:
        StoreError: the weight is negative, NaN or infinite.
    """
    if not math.isfinite(weight) or weight < 0:
        raise StoreError(f"weight must be a finite number >= 0, not {weight}")
    with store._write() as conn:
        cur = conn.execute(
            "UPDATE accounts SET weight = ?, updated_at = ? WHERE name = ?",
            (float(weight), time.time() if now is None else now, name),
        )
        return cur.rowcount > 0
