"""What the admin API shows of the running gateway: accounts and the pool (teams contract §4 shapes).

Plain reads of the gateway's in-memory state (no I/O): :func:`account_shapes` renders every account
as the contract's ``account`` (the ``/status`` row plus its owner and token times), and
:func:`pool_shape` the pool (strategy, pin, strategies, counts, headroom).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codexgw.pool.strategies import STRATEGY_NAMES
from codexgw.status import status_from_pool

if TYPE_CHECKING:
    from codexgw.upstream.gateway import Gateway

__all__ = ["STRATEGY_HELP", "account_shape", "account_shapes", "pool_shape"]

STRATEGY_HELP = {
    "round-robin": "each account in turn (the least recently picked first)",
    "least-used": "the account with the fewest requests so far",
    "random": "a random usable account",
    "weighted": "random, in proportion to each account's weight",
    "quota": "the account with the most quota headroom left",
}
"""One line per strategy for ``GET /api/pool`` (``pool.strategies.STRATEGY_NAMES``)."""


def _status(gw: Gateway) -> dict[str, Any]:
    now = gw.clock()
    return status_from_pool(gw.pool.describe(now), gw.accounts.values(), now=now)


def account_shapes(gw: Gateway) -> list[tuple[str | None, dict[str, Any]]]:
    """``(owner, account shape)`` of every account, in the pool's order."""
    by_name = {a.name: a for a in gw.accounts.values()}
    out = []
    for row in _status(gw)["accounts"]:
        account = by_name.get(row["name"])
        out.append((account.owner if account else None, account_shape(row, account)))
    return out


def account_shape(row: dict[str, Any], account: Any) -> dict[str, Any]:
    """The contract's ``account``: a ``/status`` row (its ``id`` left out: accounts go by name) plus
    ``owner``, ``access_expires_at`` and ``last_refresh`` (epoch s)."""
    shape = {k: v for k, v in row.items() if k != "id"}
    shape["owner"] = account.owner if account is not None else None
    shape["access_expires_at"] = account.access_expires_at if account is not None else None
    shape["last_refresh"] = account.last_refresh if account is not None else None
    return shape


def pool_shape(gw: Gateway, *, visible: set[str] | None = None) -> dict[str, Any]:
    """``{"strategy", "pinned", "strategies": [{"name", "help"}], "accounts", "usable", "headroom":
    {"accounts", "percent", "primary_percent", "secondary_percent"}}``; with ``visible`` (a member's
    account names), the counts and headroom are over those accounts only."""
    status = _status(gw)
    rows = [r for r in status["accounts"] if visible is None or r["name"] in visible]
    usable = [r for r in rows if r["usable"]]
    active = [r for r in rows if r["enabled"] and r["status"] == "active"]
    headroom = sum((r["quota"] or {}).get("headroom_percent", 100.0) for r in usable) / 100.0

    def window(name: str) -> float | None:
        used = [((r["quota"] or {}).get(name) or {}).get("used_percent") for r in active]
        known = [u for u in used if isinstance(u, int | float)]
        return round(100.0 - sum(known) / len(known), 1) if known else None

    pinned = status["pool"]["pinned"]
    return {
        "strategy": status["pool"]["strategy"],
        "pinned": pinned if visible is None or pinned in visible else None,
        "strategies": [{"name": n, "help": STRATEGY_HELP.get(n, "")} for n in STRATEGY_NAMES],
        "accounts": len(rows),
        "usable": len(usable),
        "headroom": {
            "accounts": round(headroom, 3),
            "percent": round(100.0 * headroom / len(active), 1) if active else None,
            "primary_percent": window("primary"),
            "secondary_percent": window("secondary"),
        },
    }
