"""The running gateway: everything a request handler needs, built once by ``serve.serve``.

A :class:`Gateway` is complete when built (nothing is set on it afterwards). It holds the parts and
forwards the few calls the routes and the failover shell make:

* :class:`~codexgw.upstream.accounts.AccountState`: accounts in memory, the pool, token refresh,
  the one in-process writer of account status (:meth:`Gateway.fresh`, :meth:`Gateway.refresh`,
  :meth:`Gateway.set_health`);
* :class:`~codexgw.upstream.prober.Prober`: quota probes;
* :class:`~codexgw.upstream.catalog.Catalog`: the model catalogue (:meth:`Gateway.models`);
* :class:`~codexgw.upstream.teams.Teams`: API keys, their scopes and policy, usage accounting
  (issue 12), with the live-event hub (``teams.events``);
* the kept responses (:class:`~codexgw.store.responses.ResponseStore`), the shared HTTP client and
  sender, the metrics, and the serve nursery (for the requests' helper tasks).

The request hot path reads only in-memory state (design §3).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import trio

from codexgw.auth.refresh import Refresher
from codexgw.client.sender import UpstreamSender
from codexgw.config import Settings
from codexgw.metrics import Metrics
from codexgw.pool.quota import QuotaSnapshot
from codexgw.pool.scheduler import Pool
from codexgw.store.responses import ResponseStore
from codexgw.store.sqlite import Account, Store
from codexgw.upstream.accounts import AccountState
from codexgw.upstream.catalog import Catalog
from codexgw.upstream.drain import Drain
from codexgw.upstream.prober import Prober
from codexgw.upstream.teams import Teams
from codexgw.upstream.workers_view import WorkersView


class Gateway:
    """Everything a request handler needs, shared by all requests of one ``serve``.

    Args:
        settings: the server settings.
        http: the shared upstream client (Codex backend and OAuth server).
        sender: sends the relay's requests (through ``http`` or a direct transport).
        account_state: the accounts, the pool and token refresh.
        metrics: the process's metrics.
        prober: the quota prober (running or not, per ``settings.probe_interval_s``).
        catalog: the model catalogue.
        responses: the kept responses (``<store dir>/responses.db``).
        teams: keys, scopes, the request policy and usage accounting.
        nursery: the serve nursery, for helper tasks of requests (stream pumps).
        clock: returns epoch seconds; injected for tests.
        drain: the process's drain state (:mod:`codexgw.upstream.drain`); a new one that never
            begins when not given.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient,
        sender: UpstreamSender,
        account_state: AccountState,
        metrics: Metrics,
        prober: Prober,
        catalog: Catalog,
        responses: ResponseStore,
        teams: Teams,
        nursery: trio.Nursery,
        clock: Callable[[], float] = time.time,
        workers_view: WorkersView | None = None,
        drain: Drain | None = None,
    ) -> None:
        self.settings = settings
        self.workers_view = workers_view
        """``serve --workers``: every worker's metrics and summary (``None`` for a single serve)."""
        self.http = http
        self.sender = sender
        self.account_state = account_state
        self.metrics = metrics
        self.prober = prober
        self.catalog = catalog
        self.responses = responses
        self.teams = teams
        self.nursery = nursery
        self.clock = clock
        self.drain = drain if drain is not None else Drain()
        self.store: Store = account_state.store
        self.pool: Pool = account_state.pool
        self.refresher: Refresher = account_state.refresher

    @property
    def accounts(self) -> dict[int, Account]:
        """id → the account as now known in memory (read-only for callers)."""
        return self.account_state.accounts

    def set_health(self, account: Account, status: str, reason: str) -> None:
        """Change an account's status now in memory and soon in the store (:meth:`AccountState.set_health`)."""
        self.account_state.set_health(account, status, reason)

    async def fresh(self, account: Account) -> Account:
        """``account`` with an access token not about to expire (:meth:`AccountState.fresh`).

        Raises:
            RefreshError: the refresh failed (:class:`~codexgw.auth.refresh.NeedsLogin`, recorded).
            TimeoutError: another process held the refresh lease too long.
        """
        return await self.account_state.fresh(account)

    async def refresh(self, account: Account, *, stale_access_token: str | None = None) -> Account:
        """Refresh ``account`` now, single-flight (:meth:`AccountState.refresh`).

        Raises:
            RefreshError: the refresh failed (:class:`~codexgw.auth.refresh.NeedsLogin`, recorded).
            TimeoutError: another process held the refresh lease too long.
        """
        return await self.account_state.refresh(account, stale_access_token=stale_access_token)

    def record_quota(self, account_id: int, snapshot: QuotaSnapshot | None) -> None:
        """Feed a rate-limit snapshot parsed from upstream headers to the pool (``None``: nothing)."""
        if snapshot is not None:
            self.pool.record_quota(account_id, snapshot)

    async def models(self) -> list[dict[str, Any]]:
        """The model catalogue, cached, or the built-in list (:meth:`Catalog.models`)."""
        return await self.catalog.models()
