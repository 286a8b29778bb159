"""Usage accounting: counters per hour, key, account and model, kept in memory and flushed in batches.

Teams contract §3. A finished request is recorded with :meth:`Ledger.record` (a dict lookup and six
adds; no I/O). The shell flushes: :meth:`Ledger.take` hands over everything recorded since the last
flush as one batch, the shell adds it to the store in one transaction, then reads today's stored
totals per key back and gives them to :meth:`Ledger.settle` (so usage flushed by another process of
the same store counts too). A failed write hands the batch back with :meth:`Ledger.put_back`.

Between flushes, :meth:`Ledger.today` is the store's totals for today (as of the last flush) plus
what was recorded since, for the day's limits (``tokens_per_day``) and ``/status``; a batch taken
but not yet settled still counts. At 00:00 UTC the day's totals start again from zero.

Counters (:data:`COUNTERS`): ``requests``, ``errors``, ``input_tokens``, ``cached_tokens``,
``output_tokens``, ``reasoning_tokens``, as the upstream reported them in its Responses ``usage``
(``input_tokens``, ``input_tokens_details.cached_tokens``, ``output_tokens``,
``output_tokens_details.reasoning_tokens``; codex-protocol.md §7). Cached tokens are part of the
input tokens and reasoning tokens part of the output tokens, as in OpenAI's usage object; a key's
"tokens" (tpm, tokens per day) are input + output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codexgw.policy.durations import day_start

__all__ = ["COUNTERS", "NO_KEY", "Batch", "Ledger", "UsageKey", "tokens_of", "usage_counts"]

COUNTERS = ("requests", "errors", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens")
NO_KEY = "-"
"""The key name of requests without a stored key (an open gateway, or ``serve --api-key``)."""
HOUR_S = 3600

UsageKey = tuple[int, str, str, str]
"""``(hour start epoch s, key name or "-", account name or "-", model or "-")``."""
Batch = dict[UsageKey, list[int]]
"""Counters (in :data:`COUNTERS` order) per :data:`UsageKey`."""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_counts(usage: Mapping[str, Any] | None) -> tuple[int, int, int, int]:
    """``(input, cached, output, reasoning)`` tokens of a Responses ``usage`` object (0 when absent)."""
    if not usage:
        return 0, 0, 0, 0
    details_in = usage.get("input_tokens_details")
    details_out = usage.get("output_tokens_details")
    cached = details_in.get("cached_tokens") if isinstance(details_in, Mapping) else None
    reasoning = details_out.get("reasoning_tokens") if isinstance(details_out, Mapping) else None
    return _int(usage.get("input_tokens")), _int(cached), _int(usage.get("output_tokens")), _int(reasoning)


def tokens_of(usage: Mapping[str, Any] | None) -> int:
    """A request's tokens for the limits: input + output."""
    counts = usage_counts(usage)
    return counts[0] + counts[2]


def _add(into: list[int], values: list[int] | tuple[int, ...]) -> None:
    for i, v in enumerate(values):
        into[i] += v


class Ledger:
    """The usage counters of one process, between flushes (see the module docstring)."""

    def __init__(self) -> None:
        self._pending: Batch = {}
        self._taken: Batch = {}
        self._day = 0
        self._base: dict[str, list[int]] = {}
        """Today's stored totals per key, as of the last :meth:`settle`."""
        self._since: dict[str, list[int]] = {}
        """Today's totals per key recorded since the last :meth:`take`."""
        self._taken_today: dict[str, list[int]] = {}
        """Today's totals per key in the batch taken and not yet settled."""
        self.last_used: dict[str, float] = {}
        """Key name → epoch s of its last recorded request since the last :meth:`take`."""
        self._taken_last_used: dict[str, float] = {}

    def _roll(self, now: float) -> int:
        day = day_start(now)
        if day != self._day:
            self._day = day
            self._base, self._since, self._taken_today = {}, {}, {}
        return day

    def record(
        self,
        *,
        now: float,
        key: str,
        account: str | None,
        model: str | None,
        usage: Mapping[str, Any] | None,
        error: bool,
    ) -> None:
        """Count one finished request at ``now`` (epoch s) with the upstream's ``usage`` (or ``None``).

        ``error``: the answer was an error (status >= 400, or a stream that failed).
        """
        values = (1, 1 if error else 0, *usage_counts(usage))
        slot = (int(now // HOUR_S) * HOUR_S, key, account or NO_KEY, model or NO_KEY)
        counters = self._pending.get(slot)
        if counters is None:
            counters = self._pending[slot] = [0] * len(COUNTERS)
        _add(counters, values)
        if slot[0] >= self._roll(now):
            today = self._since.get(key)
            if today is None:
                today = self._since[key] = [0] * len(COUNTERS)
            _add(today, values)
        if key != NO_KEY:
            self.last_used[key] = now

    def today(self, key: str, now: float) -> list[int]:
        """The key's counters since 00:00 UTC of ``now``'s day (stored, taken and recorded since)."""
        self._roll(now)
        total = [0] * len(COUNTERS)
        for part in (self._base, self._taken_today, self._since):
            values = part.get(key)
            if values is not None:
                _add(total, values)
        return total

    def tokens_today(self, key: str, now: float) -> int:
        """The key's tokens (input + output) since 00:00 UTC of ``now``'s day."""
        total = self.today(key, now)
        return total[2] + total[4]

    def keys_today(self, now: float) -> list[str]:
        """Names of the keys with counters today."""
        self._roll(now)
        return sorted({*self._base, *self._taken_today, *self._since})

    def take(self) -> tuple[Batch, dict[str, float]]:
        """Hand over everything recorded since the last take: ``(batch, last use per key)``.

        The batch still counts in :meth:`today` until :meth:`settle` or :meth:`put_back`. One batch
        at a time: take again only after settling or putting back.
        """
        batch, self._pending = self._pending, {}
        used, self.last_used = self.last_used, {}
        self._taken, self._taken_last_used = batch, used
        for key, values in self._since.items():
            _add(self._taken_today.setdefault(key, [0] * len(COUNTERS)), values)
        self._since = {}
        return batch, used

    def settle(self, day: int, stored_today: Mapping[str, list[int]]) -> None:
        """The taken batch is in the store; ``stored_today`` are the store's totals per key for
        ``day`` (00:00 UTC, epoch s) read after writing it. Ignored when the day has moved on."""
        self._taken, self._taken_last_used = {}, {}
        if day >= self._day:  # a fresh ledger (the server's start) takes the day as it is stored
            self._roll(day)
            self._base = {k: list(v) for k, v in stored_today.items()}
            self._taken_today = {}

    def put_back(self) -> None:
        """The taken batch could not be written: keep it for the next flush."""
        for slot, values in self._taken.items():
            _add(self._pending.setdefault(slot, [0] * len(COUNTERS)), values)
        for key, values in self._taken_today.items():
            _add(self._since.setdefault(key, [0] * len(COUNTERS)), values)
        for key, when in self._taken_last_used.items():
            self.last_used[key] = max(when, self.last_used.get(key, when))
        self._taken, self._taken_today, self._taken_last_used = {}, {}, {}

    @property
    def pending(self) -> Batch:
        """What was recorded since the last take (read-only)."""
        return self._pending
