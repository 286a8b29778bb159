"""Durations and times as the CLI and the admin API write them, and OpenAI's duration format.

* :func:`parse_duration`: ``90s``, ``30m``, ``1h``, ``30d`` (and ``0`` = none) to seconds.
* :func:`parse_expiry`: a duration from ``now``, a ``YYYY-MM-DD`` date (UTC midnight), or epoch
  seconds, to an epoch time; ``0`` = never.
* :func:`openai_duration`: seconds to OpenAI's ``x-ratelimit-reset-*`` format (``1s``, ``6m0s``,
  ``120ms``: Go's ``time.Duration`` text, which OpenAI's headers use).
* :func:`day_start`: the UTC midnight at or before an epoch time.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = ["DAY_S", "day_start", "openai_duration", "parse_duration", "parse_expiry"]

DAY_S = 86400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY_S}
_DURATION = re.compile(r"(\d+)([smhd])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_duration(text: str) -> float:
    """``"90s"`` → 90.0, ``"30m"`` → 1800.0, ``"1h"``, ``"30d"``; ``"0"`` → 0.0 (none).

    Raises:
        ValueError: anything else (one line naming the accepted forms).
    """
    value = text.strip().lower()
    if value == "0":
        return 0.0
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write 90s, 30m, 1h, 30d or 0")
    return float(int(match.group(1)) * _UNITS[match.group(2)])


def parse_expiry(value: str | int | float, *, now: float) -> float | None:
    """When a key given ``--expires value`` at ``now`` expires (epoch s), or ``None`` for never.

    ``value``: a duration from now (:func:`parse_duration`; ``0`` = never), a date ``YYYY-MM-DD``
    (00:00 UTC that day), or epoch seconds (a number, or digits longer than a duration). A time in
    the past is returned as is: the key is expired at once.

    Raises:
        ValueError: not one of those forms, or not a real date.
    """
    if isinstance(value, bool):
        raise ValueError("expires must be a duration, a date YYYY-MM-DD or epoch seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError("expires must be a non-negative number of epoch seconds")
        return None if value == 0 else float(value)
    text = value.strip()
    if _DATE.fullmatch(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"{text!r} is not a date") from None
        return day.timestamp()
    if text.isdigit() and len(text) > 6:
        return float(text)
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an expiry; write a duration (90s, 30m, 1h, 30d, 0 = never) or a date YYYY-MM-DD"
        ) from None
    return None if seconds == 0 else now + seconds


def day_start(now: float) -> int:
    """00:00 UTC of the day of ``now`` (epoch s): POSIX time has no leap seconds, so days are 86400 s."""
    return int(now // DAY_S) * DAY_S


def openai_duration(seconds: float) -> str:
    """``0.12`` → ``"120ms"``, ``1`` → ``"1s"``, ``360`` → ``"6m0s"``, ``1.5`` → ``"1.5s"``,
    ``3725`` → ``"1h2m5s"`` (rounded to the millisecond; negative counts as 0)."""
    ms = max(0, round(seconds * 1000))
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, frac = divmod(rest, 1000)
    secs = f"{whole}.{frac:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs
