"""Rate limits per key: requests and tokens per minute, tokens per day, concurrent requests (contract §2).

Theory of operation. Each key with limits has :class:`KeyCounters`: two sliding windows of 60
one-second buckets (requests *started*, tokens of requests *finished*) and the number of requests
in flight. :meth:`Limiter.admit` checks, in this order, ``rpm`` (the requests started in the
window are at the limit), ``tpm`` (the window's tokens are already at or over the limit),
``tokens_per_day`` (tokens since 00:00 UTC, from the usage ledger: stored and in memory) and
``max_streams`` (requests in flight, streamed or not); the first that refuses answers 429
``rate_limit_exceeded`` (OpenAI's shape: ``type`` ``requests`` or ``tokens``, ``Retry-After``).
An admitted request is counted at once (a request started, one more in flight);
:meth:`Limiter.release` ends it with the tokens the upstream reported.

A request made in second ``s`` (``floor(now)``) leaves the window when ``now >= s + 60``: the
window is between 59 and 60 seconds long.

Headers (on every answer of a key that has the limit, contract §2): ``rpm`` gives
``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests`` (after this request) and
``x-ratelimit-reset-requests`` (until the window is empty again, OpenAI's "resets to its initial
state"); ``tpm`` the ``-tokens`` three. ``tokens_per_day`` and ``max_streams`` have no headers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from codexgw.errors import RateLimitError
from codexgw.policy.durations import DAY_S, day_start, openai_duration
from codexgw.policy.keys import ApiKey

__all__ = ["WINDOW_S", "Admission", "KeyCounters", "Limiter", "Window", "admit_on", "release_on"]

WINDOW_S = 60


@dataclass
class Window:
    """Amounts in one-second buckets over the last :data:`WINDOW_S` seconds."""

    buckets: deque[list[int]] = field(default_factory=deque)
    """``[second, amount]`` pairs, oldest first."""
    total: int = 0

    def expire(self, now: float) -> None:
        """Drop the buckets that left the window at ``now``."""
        horizon = math.floor(now) - WINDOW_S
        buckets = self.buckets
        while buckets and buckets[0][0] <= horizon:
            self.total -= buckets.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        """Count ``amount`` in the bucket of ``now``."""
        second = math.floor(now)
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1][1] += amount
        else:
            self.buckets.append([second, amount])
        self.total += amount

    def frees_in(self, now: float) -> float:
        """Seconds until the oldest bucket leaves (0 when empty)."""
        return max(0.0, self.buckets[0][0] + WINDOW_S - now) if self.buckets else 0.0

    def empty_in(self, now: float) -> float:
        """Seconds until the newest bucket leaves: the window is back to its initial state."""
        return max(0.0, self.buckets[-1][0] + WINDOW_S - now) if self.buckets else 0.0


@dataclass
class KeyCounters:
    """The runtime counters of one key."""

    requests: Window = field(default_factory=Window)
    tokens: Window = field(default_factory=Window)
    in_flight: int = 0


@dataclass
class Admission:
    """What :meth:`Limiter.admit` decided: the headers for the answer, and the refusal if any.

    Attributes:
        headers: ``x-ratelimit-*`` (only for the limits the key has).
        refusal: the 429 to answer with, or ``None`` (admitted: counted, one more in flight).
    """

    headers: dict[str, str]
    refusal: RateLimitError | None = None


class Limiter:
    """The counters of every key with limits, and the decisions over them (see the module docstring)."""

    def __init__(self) -> None:
        self._counters: dict[str, KeyCounters] = {}

    def counters(self, name: str) -> KeyCounters:
        """The counters of the key called ``name`` (made on first use)."""
        counters = self._counters.get(name)
        if counters is None:
            counters = self._counters[name] = KeyCounters()
        return counters

    def retain(self, names: Iterable[str]) -> None:
        """Forget the counters of keys not in ``names`` (removed keys)."""
        keep = set(names)
        for name in [n for n in self._counters if n not in keep]:
            del self._counters[name]

    def admit(self, key: ApiKey, *, now: float, tokens_today: int = 0) -> Admission:
        """Decide whether ``key`` may start a request at ``now`` (epoch s).

        Args:
            tokens_today: the key's tokens since 00:00 UTC (input + output), for ``tokens_per_day``.

        Returns:
            The :class:`Admission`; when admitted the request is counted (rpm) and in flight.
        """
        return admit_on(self.counters(key.name), key, now=now, tokens_today=tokens_today)

    @staticmethod
    def headers(key: ApiKey, c: KeyCounters, now: float) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers of ``key`` at ``now`` (see the module docstring)."""
        headers: dict[str, str] = {}
        if key.rpm is not None:
            headers["x-ratelimit-limit-requests"] = str(key.rpm)
            headers["x-ratelimit-remaining-requests"] = str(max(0, key.rpm - c.requests.total))
            headers["x-ratelimit-reset-requests"] = openai_duration(c.requests.empty_in(now))
        if key.tpm is not None:
            headers["x-ratelimit-limit-tokens"] = str(key.tpm)
            headers["x-ratelimit-remaining-tokens"] = str(max(0, key.tpm - c.tokens.total))
            headers["x-ratelimit-reset-tokens"] = openai_duration(c.tokens.empty_in(now))
        return headers

    def current_headers(self, key: ApiKey, now: float) -> dict[str, str]:
        """The key's ``x-ratelimit-*`` headers at ``now`` without counting a request (an answer
        refused before the limits were checked)."""
        c = self.counters(key.name)
        c.requests.expire(now)
        c.tokens.expire(now)
        return self.headers(key, c, now)

    def release(self, name: str, *, tokens: int, now: float) -> None:
        """An admitted request of the key ``name`` ended at ``now``, having used ``tokens`` (input +
        output, from the upstream's usage; 0 when none was reported)."""
        c = self._counters.get(name)
        if c is not None:
            release_on(c, tokens=tokens, now=now)


def admit_on(c: KeyCounters, key: ApiKey, *, now: float, tokens_today: int = 0) -> Admission:
    """Decide whether ``key`` may start a request at ``now`` (epoch s).

    Args:
        tokens_today: the key's tokens since 00:00 UTC (input + output), for ``tokens_per_day``.

    Returns:
        The :class:`Admission`; when admitted the request is counted (rpm) and in flight.
    """
    # the decision over one key's counters, wherever they live (memory, or shared by workers)
    requests, tokens = c.requests, c.tokens
    requests.expire(now)
    tokens.expire(now)
    refusal: RateLimitError | None = None
    if key.rpm is not None and requests.total >= key.rpm:
        refusal = RateLimitError(
            f"Rate limit reached for requests per minute (RPM): limit {key.rpm}, used {requests.total}; "
            f"try again in {math.ceil(requests.frees_in(now))}s",
            kind="requests",
            retry_after_s=requests.frees_in(now),
        )
    elif key.tpm is not None and tokens.total >= key.tpm:
        refusal = RateLimitError(
            f"Rate limit reached for tokens per minute (TPM): limit {key.tpm}, used {tokens.total}; "
            f"try again in {math.ceil(tokens.frees_in(now))}s",
            kind="tokens",
            retry_after_s=tokens.frees_in(now),
        )
    elif key.tokens_per_day is not None and tokens_today >= key.tokens_per_day:
        refusal = RateLimitError(
            f"Rate limit reached for tokens per day (TPD): limit {key.tokens_per_day}, used {tokens_today}; "
            "it resets at 00:00 UTC",
            kind="tokens",
            retry_after_s=day_start(now) + DAY_S - now,
        )
    elif key.max_streams is not None and c.in_flight >= key.max_streams:
        refusal = RateLimitError(
            f"Too many concurrent requests for this key: limit {key.max_streams}; "
            "try again when one has finished",
            kind="requests",
            retry_after_s=1.0,
        )
    else:
        requests.add(now, 1)
        c.in_flight += 1
    headers = Limiter.headers(key, c, now)
    if refusal is not None:
        refusal.headers.update(headers)
    return Admission(headers, refusal)


def release_on(c: KeyCounters, *, tokens: int, now: float) -> None:
    """End one admitted request on ``c`` at ``now`` (epoch s), counting its ``tokens``."""
    c.in_flight = max(0, c.in_flight - 1)
    if tokens > 0:
        c.tokens.expire(now)
        c.tokens.add(now, tokens)
