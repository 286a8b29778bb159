"""What to tell the operator, and when: the notifier's sans-IO core.

:meth:`Notices.observe` takes the pool's public state (the ``/status`` document of
:mod:`codexgw.status`, plain dicts) and ``now`` (epoch s), and returns the :class:`Notice`\\ s to send.
The shell (``upstream/notifier.py``) builds the document every few seconds, posts what comes back,
and logs failures; nothing here does I/O.

Conditions, each per account (``pool_exhausted`` for the whole pool):

=====================  ==========================================================  ========
kind                   condition                                                   priority
=====================  ==========================================================  ========
``needs_login``        status ``needs_login`` (a refresh failed for good)          high
``login_expiring``     status ``login_expiring`` (refresh token spent, serving on   high
                       the access token until it expires)
``suspended``          status ``suspended`` (the backend deactivated it)           high
``plan_unsupported``   status ``plan_unsupported`` (no Codex in the plan)          high
``quota_critical``     a quota window has ``critical`` percent or less left,       high
                       or the backend says the limit is reached
``quota_low``          a window has ``low`` percent or less left (not critical)    default
``pool_exhausted``     no account can serve (some enabled, none usable)            urgent
=====================  ==========================================================  ========

A notice goes out when its condition starts (so a condition that lasts does not repeat), and at
most once per kind and account per ``interval_s``: a condition that starts again within the
interval waits, and is sent when the interval is over if it still holds then. Conditions present
at the first observation count as starting then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from codexgw.pool.health import AccountStatus

__all__ = ["Kind", "Notice", "Notices", "Thresholds"]


class Kind(StrEnum):
    """What a notice is about (the ``kind`` field of a JSON webhook body)."""

    NEEDS_LOGIN = "needs_login"
    LOGIN_EXPIRING = "login_expiring"
    SUSPENDED = "suspended"
    PLAN_UNSUPPORTED = "plan_unsupported"
    QUOTA_LOW = "quota_low"
    QUOTA_CRITICAL = "quota_critical"
    POOL_EXHAUSTED = "pool_exhausted"


_STATUS_KINDS = {
    AccountStatus.NEEDS_LOGIN: Kind.NEEDS_LOGIN,
    AccountStatus.LOGIN_EXPIRING: Kind.LOGIN_EXPIRING,
    AccountStatus.SUSPENDED: Kind.SUSPENDED,
    AccountStatus.PLAN_UNSUPPORTED: Kind.PLAN_UNSUPPORTED,
}
_PRIORITY = {Kind.QUOTA_LOW: "default", Kind.POOL_EXHAUSTED: "urgent"}
_TAGS = {
    Kind.NEEDS_LOGIN: "key",
    Kind.LOGIN_EXPIRING: "key",
    Kind.SUSPENDED: "no_entry",
    Kind.PLAN_UNSUPPORTED: "no_entry",
    Kind.QUOTA_LOW: "hourglass",
    Kind.QUOTA_CRITICAL: "warning",
    Kind.POOL_EXHAUSTED: "rotating_light",
}


@dataclass(frozen=True)
class Thresholds:
    """When to speak up.

    Attributes:
        low_percent, critical_percent: quota left in a window, percent (``quota_low`` at or below
            ``low``, ``quota_critical`` at or below ``critical``).
        interval_s: at most one notice per kind and account in this many seconds.
    """

    low_percent: float = 20.0
    critical_percent: float = 5.0
    interval_s: float = 3600.0


@dataclass(frozen=True)
class Notice:
    """One message to send.

    Attributes:
        kind: what it is about.
        account: the account's name, ``None`` for the whole pool.
        title: a short headline (ntfy's ``Title``).
        message: one or two sentences, with what to do.
        priority: ntfy's ``default``, ``high`` or ``urgent``.
        tag: an ntfy emoji tag (``warning`` …).
        at: when it was decided, epoch s.
    """

    kind: Kind
    account: str | None
    title: str
    message: str
    priority: str
    tag: str
    at: float

    def as_json(self) -> dict[str, Any]:
        """The JSON webhook body: ``{"source": "codexgw", "kind", "account", "title", "message",
        "priority", "time"}`` (``time`` in epoch s)."""
        return {
            "source": "codexgw",
            "kind": str(self.kind),
            "account": self.account,
            "title": self.title,
            "message": self.message,
            "priority": self.priority,
            "time": self.at,
        }


def _left_percent(row: dict[str, Any]) -> float | None:
    quota = row.get("quota")
    if not quota:
        return None
    if quota.get("limit_reached"):
        return 0.0
    windows = [w for w in (quota.get("primary"), quota.get("secondary")) if w]
    if not windows:
        return None
    return max(0.0, 100.0 - max(float(w.get("used_percent") or 0.0) for w in windows))


def _text(kind: Kind, name: str | None, row: dict[str, Any], left: float | None) -> tuple[str, str]:
    reason = f" ({row['status_reason']})" if row.get("status_reason") else ""
    if kind is Kind.NEEDS_LOGIN:
        return (
            f"codexgw: {name} needs a new login",
            f"Account {name} can no longer refresh its tokens{reason}. "
            f"Run: codexgw login device --name {name}",
        )
    if kind is Kind.LOGIN_EXPIRING:
        return (
            f"codexgw: {name} needs a new login soon",
            f"Account {name} lost its refresh token and serves until its access token expires{reason}. "
            f"Run: codexgw login device --name {name}",
        )
    if kind is Kind.SUSPENDED:
        return f"codexgw: {name} is suspended", f"The backend says account {name} is deactivated{reason}."
    if kind is Kind.PLAN_UNSUPPORTED:
        return (
            f"codexgw: {name} has no Codex in its plan",
            f"Account {name}'s plan ({row.get('plan_type') or 'unknown'}) does not include Codex{reason}.",
        )
    if kind in (Kind.QUOTA_LOW, Kind.QUOTA_CRITICAL):
        word = "critical" if kind is Kind.QUOTA_CRITICAL else "low"
        return (
            f"codexgw: {name} quota {word}",
            f"Account {name} has {left:.0f}% of a usage window left.",
        )
    return (
        "codexgw: no account can serve",
        "Every account is cooling down, at its limit or out of rotation; requests get 429/503 until one is back.",
    )


def conditions(doc: dict[str, Any], thresholds: Thresholds) -> dict[tuple[Kind, str | None], tuple[str, str]]:
    """The conditions that hold in the status document ``doc``: ``(kind, account) → (title, message)``."""
    found: dict[tuple[Kind, str | None], tuple[str, str]] = {}
    rows = doc.get("accounts") or []
    for row in rows:
        name = str(row.get("name"))
        if not row.get("enabled"):
            continue
        status_kind = _STATUS_KINDS.get(row.get("status"))  # type: ignore[call-overload]
        if status_kind is not None:
            found[(status_kind, name)] = _text(status_kind, name, row, None)
            continue
        left = _left_percent(row)
        if left is None:
            continue
        if left <= thresholds.critical_percent:
            found[(Kind.QUOTA_CRITICAL, name)] = _text(Kind.QUOTA_CRITICAL, name, row, left)
        elif left <= thresholds.low_percent:
            found[(Kind.QUOTA_LOW, name)] = _text(Kind.QUOTA_LOW, name, row, left)
    if any(r.get("enabled") for r in rows) and not any(r.get("usable") for r in rows):
        found[(Kind.POOL_EXHAUSTED, None)] = _text(Kind.POOL_EXHAUSTED, None, {}, None)
    return found


@dataclass
class Notices:
    """Remembers what was seen and sent; decides what to send next (see the module docstring).

    Args:
        thresholds: the percentages and the interval.
    """

    thresholds: Thresholds = field(default_factory=Thresholds)
    _active: set[tuple[Kind, str | None]] = field(default_factory=set)
    _unsent: set[tuple[Kind, str | None]] = field(default_factory=set)
    """Conditions that started but were not announced yet (held back by the interval)."""
    _sent_at: dict[tuple[Kind, str | None], float] = field(default_factory=dict)

    def observe(self, doc: dict[str, Any], now: float) -> list[Notice]:
        """Feed the ``/status`` document at ``now`` (epoch s); return the notices to send, in order."""
        current = conditions(doc, self.thresholds)
        self._unsent = {k for k in self._unsent if k in current} | {
            k for k in current if k not in self._active
        }
        self._active = set(current)
        out: list[Notice] = []
        for key, (title, message) in current.items():
            if key not in self._unsent:
                continue
            last = self._sent_at.get(key)
            if last is not None and now - last < self.thresholds.interval_s:
                continue
            kind, account = key
            self._sent_at[key] = now
            self._unsent.discard(key)
            out.append(
                Notice(
                    kind=kind,
                    account=account,
                    title=title,
                    message=message,
                    priority=_PRIORITY.get(kind, "high"),
                    tag=_TAGS[kind],
                    at=now,
                )
            )
        return out
