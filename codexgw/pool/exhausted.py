"""When no account is left: which accounts were in scope, why each is out, said in one line (sans-IO).

:func:`codexgw.pool.failover.exhausted_answer` decides the client's answer (its table:
``EXHAUSTED_ANSWER``); this module gives it the facts from ``Pool.snapshot`` rows and the words.

* **In scope** (:func:`in_scope`): the pinned account while pinned (a pin is strict), else every
  enabled account with a valid login (status ``active``, or ``login_expiring``). Disabled accounts and accounts needing a
  login are out of scope: they are named once at the end of a message, never counted as at a limit.
* **Why each is out** (:func:`cooling_mix`): cooling for a usage limit (``cooldown_reason``
  ``"usage_limit"``), cooling for another reason (rate limit, Cloudflare, HTTP 403 …), or not
  cooling at all: it was tried for this request and failed (its ``last_error`` says how).

No clock, no I/O: ``now`` (epoch s) comes in as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from codexgw.pool.health import SERVING

__all__ = ["CoolingMix", "cooling_mix", "describe", "earliest_limit", "in_scope", "in_words", "retry_after"]

Row = Mapping[str, Any]
"""One ``Pool.snapshot`` row: ``id``, ``name``, ``enabled``, ``status``, ``cooling_down_until`` (epoch
s or ``None``), ``cooldown_reason``, ``last_error`` …"""


class CoolingMix(StrEnum):
    """Why the accounts in scope are out: none cools (``NONE``: every one was tried and failed), all cool
    for a usage limit (``USAGE_LIMITS``), some do and the others cool for another reason or failed
    (``MIXED``), or some cool but none for a usage limit (``OTHER``)."""

    NONE = "none"
    USAGE_LIMITS = "usage_limits"
    MIXED = "mixed"
    OTHER = "other"


def in_scope(rows: Sequence[Row], pinned: int | None = None) -> list[Row]:
    """The rows the request could have used: the pinned account's (while pinned), else those enabled
    and ``active``. A row without ``enabled``/``status`` counts as in scope."""
    if pinned is not None:
        return [r for r in rows if r.get("id") == pinned]
    return [r for r in rows if r.get("enabled", True) and r.get("status", "active") in SERVING]


def _cooling(row: Row) -> bool:
    return bool(row.get("cooling_down_until"))


def _at_limit(row: Row) -> bool:
    return _cooling(row) and row.get("cooldown_reason") == "usage_limit"


def cooling_mix(scope: Sequence[Row]) -> CoolingMix:
    """Classify the rows in scope (:func:`in_scope`) by why they are out (see :class:`CoolingMix`)."""
    cooling = [r for r in scope if _cooling(r)]
    limits = [r for r in scope if _at_limit(r)]
    if not cooling:
        return CoolingMix.NONE
    if limits and len(limits) == len(scope):
        return CoolingMix.USAGE_LIMITS
    return CoolingMix.MIXED if limits else CoolingMix.OTHER


def earliest_limit(scope: Sequence[Row]) -> Row | None:
    """The row at its usage limit whose cooldown ends first (ties: membership order), or ``None``."""
    limits = [r for r in scope if _at_limit(r)]
    return min(limits, key=lambda r: float(r["cooling_down_until"])) if limits else None


def retry_after(seconds: float) -> int:
    """A wait (s) as the ``Retry-After`` header says it: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds))


def in_words(seconds: float) -> str:
    """``"42 s"``, ``"5 min"``, ``"2 h 05 min"``, ``"3 d 04 h"``: a wait for a message. Under 2 min in
    seconds as ``Retry-After`` says them (rounded up, at least 1); beyond, to the nearest minute (hour)."""
    s = retry_after(seconds)
    if s < 120:
        return f"{s} s"
    m = round(s / 60)
    if m < 120:
        return f"{m} min"
    if m < 48 * 60:
        return f"{m // 60} h {m % 60:02d} min"
    h = round(m / 60)
    return f"{h // 24} d {h % 24:02d} h"


def _why(row: Row, now: float) -> str:
    name = row.get("name") or f"account id {row.get('id')}"
    if _cooling(row):
        wait = in_words(float(row["cooling_down_until"]) - now)
        if _at_limit(row):
            return f"{name} is at its usage limit (resets in {wait})"
        return f"{name} is cooling down ({row.get('cooldown_reason')}, free in {wait})"
    error = row.get("last_error")
    return f"{name} failed ({error})" if error else f"{name} failed"


def describe(scope: Sequence[Row], rows: Sequence[Row], now: float, *, pinned: int | None = None) -> str:
    """One line naming what happened to each account in scope, then what is out of scope.

    ``"alice is at its usage limit (resets in 2 h 05 min); bob failed (the Codex backend answered
    HTTP 500: …) (1 more disabled or needing login)"``; while ``pinned``, the others are named as
    not used because of the pin.
    """
    line = "; ".join(_why(r, now) for r in scope) or "the pinned account is not configured"
    ids = {r.get("id") for r in scope}
    others = sum(1 for r in rows if r.get("id") not in ids)
    if others and pinned is not None:
        line += f" (pinned: {others} other account{'s' if others > 1 else ''} not used)"
    elif others:
        line += f" ({others} more disabled or needing login)"
    return line
