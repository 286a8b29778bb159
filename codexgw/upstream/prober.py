"""Quota probing: ``GET {upstream}/wham/usage`` per account, periodically and on demand.

codex-protocol.md §6.1: the answer gives each account's primary (5 h) and secondary (weekly)
windows (used %, window length, reset time) and whether the limit is reached. The prober feeds it to
``Pool.record_quota``, so

* the ``quota`` strategy ranks accounts by real headroom even before they served a request;
* a quota cooldown ends as soon as a probe shows the window reset (design §3 "Pool"), rather than
  at the stated reset, which can be hours late (the weekly window rolled over, a plan upgrade …).

Scheduling (:meth:`Prober.run`): every account enabled and active is probed about every
``settings.probe_interval_s`` (±10 % jitter), the accounts spread evenly across the interval; one in
a quota cooldown is re-probed every ``min(interval, COOLING_RECHECK_S)``. The first round starts
30-60 s after startup (short runs and tests see no probe traffic). Scheduling uses trio's clock;
``observed_at`` uses the injected epoch clock.

:func:`fetch_usage` is shared with ``codexgw accounts usage``, which calls the endpoint directly
with the store's tokens when no server runs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import trio

from codexgw.client.calls import request
from codexgw.client.errors import USAGE_ENDPOINT
from codexgw.errors import UpstreamConnectionError
from codexgw.oauth.tokens import RefreshError
from codexgw.pool.quota import QuotaSnapshot, parse_usage_response
from codexgw.translate.classify import parse_json_body
from codexgw.upstream.headers import plain_headers

if TYPE_CHECKING:  # annotations only: ``accounts usage`` imports fetch_usage without the server's parts
    from codexgw.metrics import Metrics
    from codexgw.store.sqlite import Account
    from codexgw.upstream.accounts import AccountState

log = logging.getLogger("codexgw.upstream.prober")

COOLING_RECHECK_S = 120.0
"""While an account sits in a quota cooldown, probe it at least this often (seconds)."""
PROBE_TIMEOUT_S = 10.0
"""Per-probe HTTP timeout, seconds."""


async def fetch_usage(http: httpx.AsyncClient, upstream_url: str, account: Account) -> tuple[int, Any]:
    """``GET {upstream_url}/wham/usage`` for ``account``.

    Returns:
        ``(HTTP status, parsed JSON body or None)``.

    Raises:
        UpstreamConnectionError: the usage endpoint could not be reached.
    """
    response = await request(
        http,
        "GET",
        f"{upstream_url.rstrip('/')}/wham/usage",
        peer=USAGE_ENDPOINT,
        headers=plain_headers(
            access_token=account.access_token, chatgpt_account_id=account.chatgpt_account_id
        ),
        timeout=PROBE_TIMEOUT_S,
    )
    return response.status_code, parse_json_body(response.content)


class ProbeFailed(Exception):
    """A probe got no usable answer (message: one line, no secrets)."""


class Prober:
    """Probes the accounts' quota and feeds the pool.

    Args:
        accounts: the accounts to probe, their tokens (``fresh``/``refresh``) and their pool.
        http: the shared upstream client.
        metrics: counts probes (``ok``/``failed``).
        upstream_url: the Codex backend base URL.
        interval_s: probe each account about this often, seconds (:meth:`run`'s schedule).
        clock: returns epoch seconds (a snapshot's ``observed_at``, cooldowns); injected for tests.
    """

    def __init__(
        self,
        accounts: AccountState,
        http: httpx.AsyncClient,
        metrics: Metrics,
        *,
        upstream_url: str,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = accounts
        self._http = http
        self._metrics = metrics
        self._upstream_url = upstream_url
        self._interval_s = interval_s
        self._clock = clock
        self._due: dict[int, float] = {}
        """account id → trio time of its next probe."""

    @property
    def interval_s(self) -> float:
        """The probe interval, seconds (settable: ``PATCH /api/settings``; the next probes follow it)."""
        return self._interval_s

    @interval_s.setter
    def interval_s(self, value: float) -> None:
        self._interval_s = value
        self._due.clear()

    async def probe(self, account_id: int) -> QuotaSnapshot:
        """Probe one account now and record the result in the pool (refreshing its token if needed).

        Returns:
            The snapshot recorded.

        Raises:
            ProbeFailed: unknown account, refresh failure, unreachable backend, non-200 or garbled answer.
        """
        account = self._accounts.accounts.get(account_id)
        if account is None:
            raise ProbeFailed(f"no account with id {account_id}")
        try:
            snapshot = await self._probe(account)
        except ProbeFailed:
            self._metrics.count_probe("failed")
            raise
        self._metrics.count_probe("ok")
        self._accounts.pool.record_quota(account.id, snapshot)
        return snapshot

    async def _probe(self, account: Account) -> QuotaSnapshot:
        accounts = self._accounts
        try:
            account = await accounts.fresh(account)
            status, body = await fetch_usage(self._http, self._upstream_url, account)
            if status == 401:
                account = await accounts.refresh(account, stale_access_token=account.access_token)
                status, body = await fetch_usage(self._http, self._upstream_url, account)
        except (RefreshError, TimeoutError) as exc:
            raise ProbeFailed(f"account {account.name} could not refresh its login: {exc}") from None
        except UpstreamConnectionError as exc:
            raise ProbeFailed(exc.message) from None
        if status != 200:
            raise ProbeFailed(f"the usage endpoint answered HTTP {status} for account {account.name}")
        snapshot = parse_usage_response(body, now=self._clock())
        if snapshot is None:
            raise ProbeFailed(f"the usage endpoint answered no JSON object for account {account.name}")
        return snapshot

    async def probe_all(self) -> dict[str, QuotaSnapshot | ProbeFailed]:
        """Probe every enabled, active account once, one after another. Returns name → result."""
        results: dict[str, QuotaSnapshot | ProbeFailed] = {}
        for account in list(self._accounts.accounts.values()):
            if account.eligible:
                try:
                    results[account.name] = await self.probe(account.id)
                except ProbeFailed as exc:
                    results[account.name] = exc
        return results

    def _interval_for(self, account_id: int) -> float:
        interval = self._interval_s
        cooldown = self._accounts.pool.cooldown_of(account_id, now=self._clock())
        if cooldown is not None and cooldown[1] in ("usage_limit", "rate_limited"):
            interval = min(interval, COOLING_RECHECK_S)
        return interval * random.uniform(0.9, 1.1)

    def _schedule(self, now: float) -> list[int]:
        """Update ``_due`` for the current membership; return the probe-able ids, in order."""
        ids = [a.id for a in self._accounts.accounts.values() if a.eligible]
        for stale in self._due.keys() - set(ids):
            del self._due[stale]
        fresh = [i for i in ids if i not in self._due]
        interval = self._interval_s
        start = min(interval, 60.0) * random.uniform(0.5, 1.0)
        for n, account_id in enumerate(fresh):
            self._due[account_id] = now + start + interval * n / max(1, len(ids))
        return ids

    async def run(self) -> None:
        """Probe accounts forever on the schedule of the module docstring (failures are logged)."""
        while True:
            if self._interval_s <= 0:  # switched off at runtime (``PATCH /api/settings``)
                await trio.sleep(5.0)
                continue
            now = trio.current_time()
            ids = self._schedule(now)
            due = min(ids, key=lambda i: self._due[i], default=None)
            if due is None or self._due[due] > now:
                wait = 5.0 if due is None else self._due[due] - now
                await trio.sleep(min(wait, 5.0))  # re-read membership at least every 5 s
                continue
            self._due[due] = now + self._interval_for(due)
            try:
                snapshot = await self.probe(due)
            except ProbeFailed as exc:
                log.info("quota probe failed: %s", exc)
            else:
                known = self._accounts.accounts
                name = known[due].name if due in known else due
                log.debug("quota of %s: %.0f %% headroom", name, snapshot.headroom_percent)
            self._due[due] = trio.current_time() + self._interval_for(due)
