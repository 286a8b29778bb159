"""Failed-login throttling for ``POST /api/session`` and ``POST /api/setup`` (teams contract §4).

Failures are counted per user name and per client address over a sliding window; once either has
:attr:`LoginThrottle.max_failures` failures in the window, attempts are refused (429 with
``Retry-After``) until the oldest failure leaves the window, whether the password is right or not.
A success clears the user's count. Time comes in as ``now`` (epoch s); memory is bounded.
"""

from __future__ import annotations

from collections import deque

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """Counts failed logins (see the module docstring).

    Args:
        max_failures: failures allowed in the window, per user name and per address.
        window_s: the window, seconds.
        max_entries: at most this many names and addresses are tracked (the oldest are forgotten).
    """

    def __init__(self, *, max_failures: int = 5, window_s: float = 300.0, max_entries: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_entries = max_entries
        self._failures: dict[str, deque[float]] = {}

    def _times(self, who: str, now: float) -> deque[float] | None:
        times = self._failures.get(who)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[who]
            return None
        return times

    def retry_after(self, user: str, address: str, now: float) -> float | None:
        """Seconds until an attempt for ``user`` from ``address`` is allowed, or ``None`` (now)."""
        waits = []
        for who in (f"user:{user}", f"addr:{address}"):
            times = self._times(who, now)
            if times is not None and len(times) >= self.max_failures:
                waits.append(times[0] + self.window_s - now)
        return max(waits) if waits else None

    def failed(self, user: str, address: str, now: float) -> None:
        """Count one failed attempt at ``now``."""
        for who in (f"user:{user}", f"addr:{address}"):
            times = self._times(who, now)
            if times is None:
                if len(self._failures) >= self.max_entries:
                    del self._failures[next(iter(self._failures))]
                times = self._failures[who] = deque()
            times.append(now)

    def succeeded(self, user: str) -> None:
        """A correct login: the user's failures are forgotten (the address's stay)."""
        self._failures.pop(f"user:{user}", None)
