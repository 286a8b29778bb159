"""The running gateway's state: accounts in memory, the pool, token refresh, the models catalogue.

The request hot path reads only in-memory state (design §3). Background tasks keep it in step with
the store (accounts added, removed or changed by the CLI while the server runs) and refresh tokens
shortly before they expire.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import trio

from codexgw.auth.refresh import NeedsLogin, Refresher
from codexgw.client.sender import UpstreamSender
from codexgw.config import CODEX_CLIENT_VERSION, Settings
from codexgw.metrics import Metrics
from codexgw.oauth.tokens import RefreshError
from codexgw.pool.health import AccountStatus
from codexgw.pool.quota import QuotaSnapshot
from codexgw.pool.scheduler import AccountView, Pool
from codexgw.store.models import ON_USE_MARGIN_S
from codexgw.store.pool_settings import PoolSettings, read_pool_settings
from codexgw.store.responses import ResponseStore
from codexgw.store.sqlite import Account, Store
from codexgw.translate.classify import parse_json_body
from codexgw.upstream.headers import plain_headers

log = logging.getLogger("codexgw.upstream.gateway")


class Gateway:
    """Everything a request handler needs, shared by all requests of one ``serve``.

    Args:
        settings: the server settings.
        store: the account store.
        http: the shared upstream client (Codex backend and OAuth server).
        clock: returns epoch seconds; injected for tests.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        sender: UpstreamSender | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.sender = sender or UpstreamSender(http)
        self.responses: ResponseStore | None = None
        """The kept responses (``responses.db``), opened on first use by ``api/responses.py``."""
        """Sends the relay's requests (through ``http`` unless given a direct transport)."""
        self.clock = clock
        self.pool = Pool()
        self.accounts: dict[int, Account] = {}
        self.refresher = Refresher(store, http, auth_url=settings.auth_url, clock=clock)
        self._generation: int | None = None
        self._models: tuple[float, list[dict[str, Any]]] | None = None
        self.nursery: trio.Nursery | None = None
        """The serve nursery, for helper tasks of requests (stream pumps); set by ``server.serve``."""
        self.metrics = Metrics(pool_rows=self._metric_rows)
        self.prober: Any = None
        """The quota prober (``codexgw.upstream.prober.Prober``) once ``server.serve`` started it."""
        self._pending_health: dict[int, tuple[str, str]] = {}
        """Status changes applied in memory but not yet written to the store (id → status, reason)."""

    # -- accounts ---------------------------------------------------------------------------

    async def reload_accounts(self, *, force: bool = False) -> bool:
        """Reload accounts from the store when it changed (or ``force``). Returns True if reloaded."""
        generation = await trio.to_thread.run_sync(self.store.generation)
        if not force and generation == self._generation:
            return False
        accounts = await trio.to_thread.run_sync(self.store.list_accounts)
        pool_settings = await trio.to_thread.run_sync(read_pool_settings, self.store)
        self._generation = generation
        for i, account in enumerate(accounts):
            pending = self._pending_health.get(account.id)
            if pending is not None and account.status == AccountStatus.ACTIVE:
                accounts[i] = dataclasses.replace(account, status=pending[0], status_reason=pending[1])
        self.accounts = {a.id: a for a in accounts}
        self.pool.set_accounts(_view(a) for a in accounts)
        self._apply_pool_settings(pool_settings)
        return True

    def _apply_pool_settings(self, stored: PoolSettings) -> None:
        """Follow the store's strategy and pin (``accounts strategy/pin/unpin`` from the CLI)."""
        if stored.strategy and stored.strategy != self.pool.strategy_name:
            try:
                self.pool.set_strategy(stored.strategy)
            except ValueError as exc:
                log.warning("ignoring the stored strategy: %s", exc)
            else:
                log.info("pool strategy is now %s", stored.strategy)
        if stored.pinned_account_id != self.pool.pinned:
            if stored.pinned_account_id is None:
                self.pool.unpin()
                log.info("pool unpinned; strategy %s chooses again", self.pool.strategy_name)
            else:
                self.pool.pin(stored.pinned_account_id)
                pinned = self.accounts.get(stored.pinned_account_id)
                log.info(
                    "pool pinned to %s (strict: no fallback)",
                    pinned.name if pinned else f"account id {stored.pinned_account_id}",
                )

    def set_health(self, account: Account, status: str, reason: str) -> None:
        """Change an account's health now in memory (the pool stops picking it) and soon in the store.

        The server's one writer of account status (the refresher writes none; a permanent refresh
        failure comes back here through :meth:`refresh`). Logged once per change, with ``reason``
        (see ``pool/health.py`` for the states); a repeat of the current status and reason does
        nothing. The store write runs in the serve nursery.
        """
        if self._apply_health(account, status, reason) and self.nursery is not None:
            self.nursery.start_soon(self._persist_health, account.id, status, reason)

    async def _record_health(self, account: Account, status: str, reason: str) -> None:
        """:meth:`set_health`, with the store write awaited (shielded) rather than in the background.

        Also when another task applied the same change and its write is still pending (the callers of
        one failed single-flight refresh): every caller returns with the status stored.
        """
        self._apply_health(account, status, reason)
        if self._pending_health.get(account.id) == (status, reason):
            with trio.CancelScope(shield=True):
                await self._persist_health(account.id, status, reason)

    def _apply_health(self, account: Account, status: str, reason: str) -> bool:
        """The in-memory half of :meth:`set_health`; True when it changed something to persist.

        The change is also kept in ``_pending_health`` until the store has it: a reload of the
        accounts before the write lands (or after it failed on a locked store) would otherwise put
        the account back in rotation with the stored ``active``.
        """
        current = self.accounts.get(account.id)
        if current is None or (current.status, current.status_reason) == (status, reason):
            return False
        log.warning("account %s is now %s: %s", current.name, status, reason)
        self.metrics.count_state_change(current.name, status)
        self._pending_health[account.id] = (status, reason)
        self.update_account(dataclasses.replace(current, status=status, status_reason=reason))
        return True

    async def _persist_health(self, account_id: int, status: str, reason: str) -> None:
        try:
            await trio.to_thread.run_sync(
                lambda: self.store.set_status(account_id, status, reason, now=self.clock())
            )
        except Exception as exc:  # a locked store: the in-memory state still holds until restart
            log.warning("could not save the status of account id %d: %s", account_id, exc)
            return
        if self._pending_health.get(account_id) == (status, reason):
            del self._pending_health[account_id]

    def _metric_rows(self) -> list[dict[str, Any]]:
        now = self.clock()
        rows = self.pool.snapshot(now)
        for row in rows:
            until = row.get("cooling_down_until")
            row["cooldown_remaining_s"] = max(0.0, until - now) if until is not None else 0.0
        return rows

    def update_account(self, account: Account) -> None:
        """Replace one account's in-memory copy (after a refresh or a status change)."""
        self.accounts[account.id] = account
        self.pool.set_accounts(_view(a) for a in self.accounts.values())

    async def watch_store(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll the store every ``settings.accounts_poll_s`` s and reload on change; purge stale affinity. Forever."""
        await self.reload_accounts(force=True)
        task_status.started()
        next_purge = self.clock() + 60.0
        while True:
            await trio.sleep(self.settings.accounts_poll_s)
            try:
                if await self.reload_accounts():
                    log.info("accounts reloaded from the store (%d)", len(self.accounts))
            except Exception as exc:  # a locked or briefly unreadable store must not kill the server
                log.warning("could not read the store: %s", exc)
            if self.clock() >= next_purge:
                self.pool.affinity.purge(self.clock())
                next_purge = self.clock() + 60.0

    async def fresh(self, account: Account) -> Account:
        """Return ``account`` with an access token that is not about to expire (refreshing if needed).

        Raises:
            RefreshError: the refresh failed (``permanent`` means the account now needs a login).
        """
        margin_s = min(ON_USE_MARGIN_S, self.settings.refresh_margin_s)
        if not account.needs_refresh(now=self.clock(), margin_s=margin_s):
            return account
        return await self.refresh(account)

    async def refresh(self, account: Account, *, stale_access_token: str | None = None) -> Account:
        """Refresh ``account`` (single-flight) and update the in-memory copy.

        Raises:
            RefreshError: see :meth:`Refresher.refresh`; a :class:`NeedsLogin` is recorded first
                (status ``needs_login`` in memory and in the store, as :meth:`set_health`).
        """
        try:
            updated = await self.refresher.refresh(account, stale_access_token=stale_access_token)
        except RefreshError as exc:
            self.metrics.count_refresh("needs_login" if exc.permanent else "failed")
            if isinstance(exc, NeedsLogin):
                await self._record_health(account, AccountStatus.NEEDS_LOGIN, exc.status_reason)
            raise
        self.metrics.count_refresh("ok")
        self.update_account(updated)
        return updated

    async def refresh_loop(self, *, check_every_s: float = 30.0) -> None:
        """Refresh accounts shortly before their tokens expire, one at a time, spread out. Forever."""
        while True:
            due = [
                a
                for a in list(self.accounts.values())
                if a.eligible
                and a.needs_refresh(now=self.clock(), margin_s=self.settings.refresh_margin_s)
                and self.refresher.backoff_remaining(a.id) == 0
            ]
            for account in due:
                try:
                    await self.refresh(account)
                except (RefreshError, TimeoutError) as exc:
                    log.warning("background refresh of %s failed: %s", account.name, exc)
                await trio.sleep(random.uniform(0.5, 2.0) if len(due) > 1 else 0)  # spread, never all at once
            await trio.sleep(check_every_s)

    # -- quota --------------------------------------------------------------------------------

    def record_quota(self, account_id: int, snapshot: QuotaSnapshot | None) -> None:
        """Feed a rate-limit snapshot parsed from upstream headers to the pool."""
        if snapshot is not None:
            self.pool.record_quota(account_id, snapshot)

    # -- models -------------------------------------------------------------------------------

    async def models(self) -> list[dict[str, Any]]:
        """Return the upstream model catalogue (``/codex/models``), cached ``settings.models_ttl_s``.

        Falls back to the built-in list of codex-protocol.md §10 when no account can fetch it.
        """
        now = self.clock()
        if self._models is not None and self._models[0] > now:
            return self._models[1]
        models = await self._fetch_models()
        if models is None:
            from codexgw.upstream.catalog import BUILTIN_MODELS

            return BUILTIN_MODELS
        self._models = (now + self.settings.models_ttl_s, models)
        return models

    async def _fetch_models(self) -> list[dict[str, Any]] | None:
        candidates = [a for a in self.accounts.values() if a.eligible]
        for account in candidates[:2]:
            try:
                account = await self.fresh(account)
                response = await self.http.get(
                    f"{self.settings.upstream_url}/codex/models",
                    params={"client_version": CODEX_CLIENT_VERSION},
                    headers=plain_headers(
                        access_token=account.access_token, chatgpt_account_id=account.chatgpt_account_id
                    ),
                    timeout=5.0,
                )
            except (httpx.HTTPError, RefreshError, TimeoutError) as exc:
                log.info("could not fetch the model catalogue: %s", type(exc).__name__)
                continue
            body = parse_json_body(response.content) if response.status_code == 200 else None
            if isinstance(body, dict) and isinstance(body.get("models"), list):
                return [m for m in body["models"] if isinstance(m, dict) and isinstance(m.get("slug"), str)]
        return None


def _view(account: Account) -> AccountView:
    return AccountView(
        id=account.id,
        name=account.name,
        enabled=account.enabled,
        status=account.status,
        weight=account.weight,
        plan_type=account.plan_type,
    )
