"""The pool's persisted choices: scheduling strategy, pinned account, per-account weight, and the
requests to end a cooldown now (``accounts reset``).

These live in the store so ``codexgw accounts pin/unpin/strategy/set`` (another process) reach a
running server: every write bumps ``meta.generation`` (triggers of migration step 2, and of step 1
for ``accounts.weight``), which the server polls (``Gateway.watch_store``) and then reloads.

Functions take a :class:`~codexgw.store.sqlite.Store` and are synchronous, like the store itself (the
server calls them through ``trio.to_thread``). Nothing here touches tokens.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codexgw.store.models import StoreError
from codexgw.store.sqlite import Store

__all__ = [
    "PoolSettings",
    "read_pool_settings",
    "record_quota_readings",
    "request_cooldown_reset",
    "set_pinned",
    "set_strategy",
    "set_weight",
]

_STRATEGY = "strategy"
_PINNED = "pinned_account_id"
_RESETS = "cooldown_resets"
_READINGS = "quota_readings"


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
    cooldown_resets: Mapping[int, float] = field(default_factory=dict)
    """``accounts.id`` → when (epoch s) ``accounts reset`` (or ``enable``) asked to end its cooldown;
    a running server ends cooldowns set before that when the value changes (the cooldowns live in
    its memory)."""
    quota_readings: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    """``accounts.id`` → the last quota reading ``accounts usage`` made (``QuotaSnapshot.to_dict``),
    which a running server takes in as its own probes' (so ``status`` says what ``usage`` said)."""


def read_pool_settings(store: Store) -> PoolSettings:
    """Return the stored strategy, pin and reset requests (defaults when unset or unreadable)."""
    with store._read() as conn:
        rows = dict(conn.execute("SELECT key, value FROM pool_settings").fetchall())
    pinned = rows.get(_PINNED)
    try:
        pinned_id = int(pinned) if pinned is not None else None
    except ValueError:
        pinned_id = None
    return PoolSettings(
        strategy=rows.get(_STRATEGY) or None,
        pinned_account_id=pinned_id,
        cooldown_resets=_resets(rows.get(_RESETS)),
        quota_readings=_readings(rows.get(_READINGS)),
    )


def _resets(raw: str | None) -> dict[int, float]:
    try:
        data = json.loads(raw) if raw else {}
        return {int(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (ValueError, TypeError):
        return {}


def _readings(raw: str | None) -> dict[int, dict[str, Any]]:
    try:
        data = json.loads(raw) if raw else {}
        return {int(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}
    except (ValueError, TypeError):
        return {}


def _put_json(conn: Any, key: str, value: dict[int, Any]) -> None:
    """Store ``value`` under ``key``, keeping only the ids of accounts that still exist."""
    known = {r[0] for r in conn.execute("SELECT id FROM accounts")}
    text = json.dumps({str(k): v for k, v in value.items() if k in known}, sort_keys=True)
    conn.execute(
        "INSERT INTO pool_settings (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, text),
    )


def record_quota_readings(store: Store, readings: Mapping[int, Mapping[str, Any]]) -> None:
    """Keep the quota readings ``accounts usage`` made (account id → ``QuotaSnapshot.to_dict()``)
    for a running server to take in (one write; the store generation bumps)."""
    if not readings:
        return
    with store._write() as conn:
        row = conn.execute("SELECT value FROM pool_settings WHERE key = ?", (_READINGS,)).fetchone()
        merged: dict[int, Any] = _readings(row[0] if row else None)
        merged.update({int(k): dict(v) for k, v in readings.items()})
        _put_json(conn, _READINGS, merged)


def request_cooldown_reset(store: Store, account_id: int, *, now: float | None = None) -> None:
    """Ask a running server to end account ``account_id``'s cooldown now (``accounts reset``): the
    request is stored with its time, which bumps the store generation the server follows."""
    with store._write() as conn:
        row = conn.execute("SELECT value FROM pool_settings WHERE key = ?", (_RESETS,)).fetchone()
        resets = _resets(row[0] if row else None)
        resets[int(account_id)] = time.time() if now is None else now
        _put_json(conn, _RESETS, resets)


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
