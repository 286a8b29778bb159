"""Quota and rate-limit parsing: what the Codex backend says about an account's usage (sans-IO).

Three sources describe an account's quota, all turned into the same frozen values here:

* the ``x-codex-*`` response headers on every ``/codex/responses`` answer (codex-protocol.md §8.1)
  → :func:`parse_rate_limit_headers`;
* the JSON body of a 429 (codex-protocol.md §8.2) → :func:`parse_usage_limit_body`;
* ``GET /wham/usage`` (codex-protocol.md §6.1) → :func:`parse_usage_response`.

:func:`cooldown_until` folds them into the one number the pool needs after a 429: until when to leave
the account alone. Nothing here reads the clock: ``now`` is always a parameter, in epoch seconds, and
every ``resets_at`` is epoch seconds too. Parsers never raise on malformed input; they ignore what they
cannot read.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "QuotaSnapshot",
    "UsageLimit",
    "Window",
    "cooldown_until",
    "parse_rate_limit_headers",
    "parse_usage_limit_body",
    "parse_usage_response",
]


@dataclass(frozen=True)
class Window:
    """One usage window (e.g. the 5-hour "primary" or weekly "secondary" limit).

    Attributes:
        used_percent: share of the window used, 0-100 (may exceed 100).
        window_minutes: window length in minutes, or ``None`` when not reported.
        resets_at: epoch seconds when the window resets, or ``None`` when not reported.
    """

    used_percent: float
    window_minutes: int | None
    resets_at: float | None

    @property
    def exhausted(self) -> bool:
        """True when the window is used up (``used_percent >= 100``)."""
        return self.used_percent >= 100.0


@dataclass(frozen=True)
class QuotaSnapshot:
    """An account's quota as seen at ``observed_at`` (epoch s).

    Attributes:
        primary, secondary: the two windows, each ``None`` when not reported.
        observed_at: epoch seconds when this was observed (the ``now`` given to the parser).
        plan_type: the account plan (``"plus"``, ``"pro"`` …) when the source names it.
        limit_reached: the backend said the account is blocked (``/wham/usage`` only).
    """

    primary: Window | None
    secondary: Window | None
    observed_at: float
    plan_type: str | None = None
    limit_reached: bool = False

    @property
    def windows(self) -> tuple[Window, ...]:
        """The windows present, primary first."""
        return tuple(w for w in (self.primary, self.secondary) if w is not None)

    @property
    def headroom_percent(self) -> float:
        """``100 - max(used_percent)`` over the windows, clamped to 0-100; 100 when none is reported."""
        windows = self.windows
        if not windows:
            return 100.0
        return min(100.0, max(0.0, 100.0 - max(w.used_percent for w in windows)))

    def exhausted_until(self, now: float) -> float | None:
        """Return until when (epoch s) the account is blocked by this snapshot, or ``None``.

        The answer is the latest ``resets_at`` after ``now`` among windows at ``>= 100 %`` used. When
        ``limit_reached`` is set but no window is at 100 %, it is the latest future reset of any window.
        ``None`` when nothing is exhausted, or when the exhausted windows name no future reset.
        """
        exhausted = [w.resets_at for w in self.windows if w.exhausted and w.resets_at is not None]
        if not exhausted and self.limit_reached and not any(w.exhausted for w in self.windows):
            exhausted = [w.resets_at for w in self.windows if w.resets_at is not None]
        future = [t for t in exhausted if t is not None and t > now]
        return max(future) if future else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (the fields, each window ``None`` or its three fields)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuotaSnapshot | None:
        """The snapshot :meth:`to_dict` made, or ``None`` for anything else (never raises)."""
        try:
            windows = [
                None if data.get(k) is None else Window(**dict(data[k])) for k in ("primary", "secondary")
            ]
            return cls(
                windows[0],
                windows[1],
                float(data["observed_at"]),
                data.get("plan_type"),
                bool(data.get("limit_reached")),
            )
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def shows_headroom(self) -> bool:
        """True when at least one window is reported, none is exhausted and no limit is flagged."""
        return bool(self.windows) and not self.limit_reached and not any(w.exhausted for w in self.windows)


@dataclass(frozen=True)
class UsageLimit:
    """The ``error`` object of a 429 body (codex-protocol.md §8.2).

    Attributes:
        type: ``error.type`` (or ``error.code``): ``usage_limit_reached``, ``usage_not_included``,
            ``rate_limit_exceeded`` …
        resets_at: epoch seconds from ``error.resets_at``, else ``now + error.resets_in_seconds``.
        plan_type: ``error.plan_type``.
        message: ``error.message``.
    """

    type: str
    resets_at: float | None
    plan_type: str | None
    message: str | None


# ---------------------------------------------------------------------------------------------- helpers


def _number(value: object) -> float | None:
    """A finite float from a JSON number or numeric string; ``None`` for anything else (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def _as_json(body: object) -> object:
    """Decode ``bytes``/``str`` bodies as JSON (``None`` if that fails); pass other objects through."""
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body


def _error_object(body: object) -> dict[str, Any] | None:
    """Find the error object in a 429 body, an ``error`` event or a ``response.failed`` event."""
    body = _as_json(body)
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if error is None and isinstance(body.get("response"), dict):
        error = body["response"].get("error")
    return error if isinstance(error, dict) else None


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    try:
        return {str(k).lower(): str(v) for k, v in headers.items()}
    except (AttributeError, TypeError):
        return {}


# ---------------------------------------------------------------------------------------------- headers


def _header_window(h: dict[str, str], which: str, now: float) -> Window | None:
    used = _number(h.get(f"x-codex-{which}-used-percent"))
    if used is None:
        return None
    minutes = _number(h.get(f"x-codex-{which}-window-minutes"))
    resets_at = _number(h.get(f"x-codex-{which}-reset-at"))
    if resets_at is None:
        after = _number(h.get(f"x-codex-{which}-reset-after-seconds"))
        resets_at = now + after if after is not None and after >= 0 else None
    return Window(
        used_percent=used,
        window_minutes=int(minutes) if minutes is not None and minutes >= 0 else None,
        resets_at=resets_at,
    )


def parse_rate_limit_headers(headers: Mapping[str, str], *, now: float) -> QuotaSnapshot | None:
    """Read the ``x-codex-{primary,secondary}-*`` headers of a backend answer (codex-protocol.md §8.1).

    Args:
        headers: response headers, any case (a ``dict`` or ``httpx.Headers``).
        now: epoch seconds; the snapshot's ``observed_at`` and the base for ``-reset-after-seconds``.

    Returns:
        A snapshot with a window per ``-used-percent`` header that parses, ``-window-minutes`` (int) and
        ``-reset-at`` (epoch s; the older ``-reset-after-seconds`` counts from ``now``) when they parse;
        ``None`` when neither window's ``-used-percent`` is present and valid. Other limit families
        (``x-codex-bengalfox-*``) are ignored. Never raises.
    """
    h = _lower_keys(headers)
    primary = _header_window(h, "primary", now)
    secondary = _header_window(h, "secondary", now)
    if primary is None and secondary is None:
        return None
    return QuotaSnapshot(primary=primary, secondary=secondary, observed_at=now)


# ---------------------------------------------------------------------------------------------- 429 body


def parse_usage_limit_body(body: object, *, now: float) -> UsageLimit | None:
    """Read the ``error`` object of a 429 body (codex-protocol.md §8.2).

    Args:
        body: the parsed JSON (``dict``) or the raw ``bytes``/``str``; a ``response.failed`` event's
            ``response.error`` is found too.
        now: epoch seconds, the base for ``error.resets_in_seconds``.

    Returns:
        ``UsageLimit`` when the error object has a string ``type`` (or ``code``), else ``None``.
        ``resets_at`` prefers ``error.resets_at`` (epoch s) over ``now + error.resets_in_seconds``.
        Never raises.
    """
    error = _error_object(body)
    if error is None:
        return None
    kind = error.get("type") if isinstance(error.get("type"), str) else error.get("code")
    if not isinstance(kind, str) or not kind:
        return None
    resets_at = _number(error.get("resets_at"))
    if resets_at is None:
        resets_in = _number(error.get("resets_in_seconds"))
        resets_at = now + resets_in if resets_in is not None and resets_in >= 0 else None
    plan_type = error.get("plan_type")
    message = error.get("message")
    return UsageLimit(
        type=kind,
        resets_at=resets_at,
        plan_type=plan_type if isinstance(plan_type, str) else None,
        message=message if isinstance(message, str) else None,
    )


# ---------------------------------------------------------------------------------------------- wham/usage


def _usage_window(obj: object, now: float) -> Window | None:
    if not isinstance(obj, dict):
        return None
    used = _number(obj.get("used_percent"))
    if used is None:
        return None
    seconds = _number(obj.get("limit_window_seconds"))
    resets_at = _number(obj.get("reset_at"))
    if resets_at is None:
        after = _number(obj.get("reset_after_seconds"))
        resets_at = now + after if after is not None and after >= 0 else None
    return Window(
        used_percent=used,
        window_minutes=math.ceil(seconds / 60) if seconds is not None and seconds >= 0 else None,
        resets_at=resets_at,
    )


def parse_usage_response(body: object, *, now: float) -> QuotaSnapshot | None:
    """Read a ``GET /wham/usage`` answer (codex-protocol.md §6.1).

    Args:
        body: parsed JSON or raw bytes/str, shaped ``{"plan_type", "rate_limit": {"allowed",
            "limit_reached", "primary_window": {"used_percent", "limit_window_seconds",
            "reset_after_seconds", "reset_at"}, "secondary_window": {…}}, …}``.
        now: epoch seconds; ``observed_at`` and the base for ``reset_after_seconds``.

    Returns:
        The snapshot: ``window_minutes = ceil(limit_window_seconds / 60)``, ``resets_at`` from
        ``reset_at`` else ``now + reset_after_seconds``, ``limit_reached`` when ``rate_limit.limit_reached``
        is true or ``rate_limit.allowed`` is false. ``additional_rate_limits`` are ignored. ``None`` when
        the body is not a JSON object. Never raises.
    """
    body = _as_json(body)
    if not isinstance(body, dict):
        return None
    rate_limit = body.get("rate_limit")
    rate_limit = rate_limit if isinstance(rate_limit, dict) else {}
    plan_type = body.get("plan_type")
    return QuotaSnapshot(
        primary=_usage_window(rate_limit.get("primary_window"), now),
        secondary=_usage_window(rate_limit.get("secondary_window"), now),
        observed_at=now,
        plan_type=plan_type if isinstance(plan_type, str) else None,
        limit_reached=rate_limit.get("limit_reached") is True or rate_limit.get("allowed") is False,
    )


# ---------------------------------------------------------------------------------------------- cooldown

_TRY_AGAIN = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(ms|seconds?|s)\b", re.IGNORECASE)


def _retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as epoch s: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return now + seconds if seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return when.timestamp()


def _message_delay(error: dict[str, Any] | None, now: float) -> float | None:
    """``now + N`` from "Please try again in N s/ms/seconds" in ``error.message`` (codex-protocol.md §8.3)."""
    message = error.get("message") if error else None
    if not isinstance(message, str):
        return None
    match = _TRY_AGAIN.search(message)
    if match is None:
        return None
    value = float(match.group(1))
    return now + (value / 1000.0 if match.group(2).lower() == "ms" else value)


def cooldown_until(
    *,
    status: int,
    headers: Mapping[str, str],
    body: object,
    now: float,
    default_s: float = 60.0,
) -> float:
    """Until when (epoch s) to rest an account after a 429 (design.md §3 "Pool").

    The first of these that names a time after ``now`` wins:

    1. the body's ``error.resets_at`` / ``now + error.resets_in_seconds`` (codex-protocol.md §8.2);
    2. the ``Retry-After`` header, delay-seconds or HTTP-date;
    3. "try again in 11.054s" / "… 250ms" in ``error.message`` (``rate_limit_exceeded``, §8.3);
    4. the latest ``x-codex-*-reset-at`` of a window at ``>= 100 %`` used (§8.1);
    5. ``now + default_s``.

    Args:
        status: the upstream HTTP status (the same rules apply to any status; meant for 429).
        headers: response headers, any case.
        body: the parsed JSON error body or the raw bytes/str (anything else is ignored).
        now: epoch seconds.
        default_s: fallback cooldown in seconds.

    Returns:
        Epoch seconds, never earlier than ``now``. Never raises.
    """
    del status  # one rule set for every status; kept so callers say what they saw
    h = _lower_keys(headers)
    error = _error_object(body)
    limit = parse_usage_limit_body(body, now=now)
    snapshot = parse_rate_limit_headers(h, now=now)
    candidates = (
        limit.resets_at if limit else None,
        _retry_after(h.get("retry-after"), now),
        _message_delay(error, now),
        snapshot.exhausted_until(now) if snapshot else None,
    )
    for candidate in candidates:
        if candidate is not None and math.isfinite(candidate) and candidate > now:
            return candidate
    return now + max(0.0, default_s)
