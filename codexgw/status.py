"""The ``GET /status`` document: the pool's public state, from a live gateway or from the store alone.

Pure functions over plain data (no I/O, no clock reads): the route passes ``Pool.describe(now)`` and
the in-memory accounts; ``codexgw status`` without a reachable server passes the stored accounts and
pool settings (no live cooldowns, counters or quota then). Tokens never enter: only the fields of
:func:`_identity` are read from an account.

Shape::

    {"object": "codexgw.status", "source": "server" | "store", "time": epoch s,
     "pool": {"strategy": str, "pinned": name | None, "accounts": int, "usable": int,
              "headroom": {"accounts": float, "percent": float | None},
              "affinity": {"sessions": int, "ttl_s": float} | None},
     "accounts": [{"id", "name", "email", "plan_type", "enabled", "status", "status_reason",
                   "weight", "pinned": bool, "usable": bool,
                   "cooldown": None | {"until": epoch s, "in_s": s, "reason": str},
                   "quota": None | {"observed_at", "limit_reached", "headroom_percent",
                                    "primary": window | None, "secondary": window | None},
                   "requests", "errors", "last_error", "last_used_at"}]}
    window = {"used_percent": 0-100+, "window_minutes": int | None, "resets_at": epoch s | None}

``headroom.accounts`` sums the remaining share of the tighter window over the usable accounts (2.5
means two and a half accounts' worth left); ``headroom.percent`` is that over every enabled, active
account (cooling ones count 0), or ``None`` when there is none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from codexgw.pool.health import eligible

__all__ = ["status_from_pool", "status_from_store"]


class _AccountLike(Protocol):
    id: int
    name: str
    email: str | None
    plan_type: str | None
    enabled: bool
    status: str
    status_reason: str | None
    weight: float


def _identity(account: _AccountLike) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "email": account.email,
        "plan_type": account.plan_type,
        "enabled": account.enabled,
        "status": account.status,
        "status_reason": account.status_reason,
        "weight": account.weight,
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    active = [r for r in rows if eligible(r["enabled"], r["status"])]
    usable = [r for r in rows if r["usable"]]
    headroom = sum((r["quota"] or {}).get("headroom_percent", 100.0) for r in usable) / 100.0
    return {
        "accounts": len(rows),
        "usable": len(usable),
        "headroom": {
            "accounts": round(headroom, 3),
            "percent": round(100.0 * headroom / len(active), 1) if active else None,
        },
    }


def status_from_pool(
    description: dict[str, Any], accounts: Iterable[_AccountLike], *, now: float
) -> dict[str, Any]:
    """Build the document from a live pool.

    Args:
        description: ``Pool.describe(now)``.
        accounts: the gateway's in-memory accounts (for email and status reason).
        now: epoch seconds.
    """
    by_id = {a.id: a for a in accounts}
    pinned_id = description.get("pinned")
    rows: list[dict[str, Any]] = []
    for snap in description["accounts"]:
        account = by_id.get(snap["id"])
        row = (
            _identity(account)
            if account is not None
            else {k: snap.get(k) for k in ("id", "name", "plan_type", "enabled", "status", "weight")}
            | {"email": None, "status_reason": None}
        )
        until = snap.get("cooling_down_until")
        quota = snap.get("quota")
        row.update(
            plan_type=row.get("plan_type") or snap.get("plan_type"),
            pinned=snap["id"] == pinned_id,
            usable=bool(snap.get("usable")),
            cooldown=None
            if until is None
            else {
                "until": until,
                "in_s": max(0.0, round(until - now, 1)),
                "reason": snap.get("cooldown_reason"),
            },
            quota=None if quota is None else {k: v for k, v in quota.items() if k != "plan_type"},
            requests=snap.get("requests", 0),
            errors=snap.get("errors", 0),
            last_error=snap.get("last_error"),
            last_used_at=snap.get("last_used_at"),
        )
        rows.append(row)
    pinned_name = (
        by_id[pinned_id].name if pinned_id in by_id else (None if pinned_id is None else f"id {pinned_id}")
    )
    return {
        "object": "codexgw.status",
        "source": "server",
        "time": now,
        "pool": {
            "strategy": description.get("strategy"),
            "pinned": pinned_name,
            **_totals(rows),
            "affinity": description.get("affinity"),
        },
        "accounts": rows,
    }


def status_from_store(
    accounts: Iterable[_AccountLike], *, strategy: str | None, pinned_account_id: int | None, now: float
) -> dict[str, Any]:
    """Build the document from the store alone (no server): statuses, weights, pin; no live state.

    Args:
        accounts: stored accounts.
        strategy: the stored strategy name (``None``: the default, round-robin).
        pinned_account_id: the stored pin.
        now: epoch seconds.
    """
    rows = []
    by_id: dict[int, str] = {}
    for account in accounts:
        by_id[account.id] = account.name
        row = _identity(account)
        row.update(
            pinned=account.id == pinned_account_id,
            usable=eligible(account.enabled, account.status),
            cooldown=None,
            quota=None,
            requests=None,
            errors=None,
            last_error=None,
            last_used_at=None,
        )
        rows.append(row)
    pinned = None if pinned_account_id is None else by_id.get(pinned_account_id, f"id {pinned_account_id}")
    return {
        "object": "codexgw.status",
        "source": "store",
        "time": now,
        "pool": {"strategy": strategy or "round-robin", "pinned": pinned, **_totals(rows), "affinity": None},
        "accounts": rows,
    }
