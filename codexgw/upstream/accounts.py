"""The running server's accounts: in-memory copies, the pool, token refresh, and account status.

The request hot path reads only in-memory state (design §3). :meth:`AccountState.watch_store` keeps
it in step with the store (accounts added, removed or changed by the CLI while the server runs);
:meth:`AccountState.refresh_loop` refreshes tokens ``Settings.refresh_margin_s`` before they expire.

Who writes what: the :class:`~codexgw.auth.refresh.Refresher` writes tokens (and its lease); this
class is the server's one writer of an account's ``status``: :meth:`AccountState.set_health` (a
verdict of ``pool/health.py``) and :meth:`AccountState.refresh` (a :class:`NeedsLogin`) change it
in memory first, then in the store.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio

from codexgw.auth.refresh import NeedsLogin, Refresher
from codexgw.config import command_name
from codexgw.metrics import Metrics
from codexgw.oauth.tokens import RefreshError
from codexgw.pool.health import AccountStatus, spent_refresh_status
from codexgw.pool.quota import QuotaSnapshot
from codexgw.pool.scheduler import AccountView, Pool
from codexgw.store.models import ON_USE_MARGIN_S
from codexgw.store.pool_settings import PoolSettings, read_pool_settings
from codexgw.store.sqlite import Account, Store

log = logging.getLogger("codexgw.upstream.accounts")

AFFINITY_PURGE_S = 60.0
"""How often :meth:`AccountState.watch_store` drops expired session bindings, seconds."""


class AccountState:
    """The accounts one ``serve`` works with, kept in memory and in step with the store.

    Args:
        store: the account store.
        pool: the scheduler the accounts are fed to (its views follow every change here).
        refresher: refreshes tokens (single-flight across tasks and processes).
        metrics: counts refreshes (``ok``/``failed``/``needs_login``) and status changes.
        nursery: runs the background store writes of :meth:`set_health`.
        poll_s: how often :meth:`watch_store` checks the store for changes, seconds.
        refresh_margin_s: how long before ``exp`` :meth:`refresh_loop` refreshes a token, seconds.
        clock: returns epoch seconds; injected for tests.
    """

    def __init__(
        self,
        store: Store,
        pool: Pool,
        refresher: Refresher,
        metrics: Metrics,
        nursery: trio.Nursery,
        *,
        poll_s: float,
        refresh_margin_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.pool = pool
        self.refresher = refresher
        self.metrics = metrics
        self.nursery = nursery
        self.poll_s = poll_s
        self.refresh_margin_s = refresh_margin_s
        self.clock = clock
        self.accounts: dict[int, Account] = {}
        """id → the account as last loaded, refreshed or changed in status."""
        self._generation: int | None = None
        self._resets_seen: dict[int, float] | None = None
        """The stored cooldown-reset requests already followed (``None``: not loaded yet)."""
        self._readings_seen: dict[int, Any] = {}
        """``observed_at`` of the stored ``accounts usage`` reading already taken in, per account."""
        self._pending_health: dict[int, tuple[str, str]] = {}
        """Status changes applied in memory but not yet written to the store (id → status, reason)."""
        self.followers: list[Callable[[dict[int, Account]], Awaitable[None]]] = []
        """Awaited with the accounts after every reload (the teams state follows the same generation)."""

    # -- following the store -----------------------------------------------------------------------

    async def reload(self, *, force: bool = False) -> bool:
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
        for follow in self.followers:
            try:
                await follow(self.accounts)
            except Exception:  # a locked store: this generation is read again at the next poll
                self._generation = None
                raise
        return True

    def _apply_pool_settings(self, stored: PoolSettings) -> None:
        """Follow the store's strategy, pin and cooldown resets (``accounts strategy/pin/unpin/reset``
        from the CLI). Reset requests stored before this server loaded the store are not replayed."""
        for account_id, reading in stored.quota_readings.items():  # `accounts usage`: as our own probes
            if self._readings_seen.get(account_id) == reading.get("observed_at"):
                continue  # taken in already (a reset since must not be undone by it)
            self._readings_seen[account_id] = reading.get("observed_at")
            snapshot = QuotaSnapshot.from_dict(reading)
            if snapshot is not None:
                self.pool.record_quota(account_id, snapshot)  # older than what we hold: ignored
        seen, self._resets_seen = self._resets_seen, dict(stored.cooldown_resets)
        for account_id, requested_at in stored.cooldown_resets.items():
            if seen is not None and seen.get(account_id) != requested_at:
                self.pool.clear_cooldown(account_id, why="`accounts reset` cleared it", before=requested_at)
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

    async def watch_store(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the accounts, report started, then poll the store every ``poll_s`` and reload on
        change; purge expired session bindings every :data:`AFFINITY_PURGE_S`. Forever."""
        await self.reload(force=True)
        task_status.started()
        next_purge = self.clock() + AFFINITY_PURGE_S
        while True:
            await trio.sleep(self.poll_s)
            try:
                if await self.reload():
                    log.info("accounts reloaded from the store (%d)", len(self.accounts))
                    if not any(a.eligible for a in self.accounts.values()):
                        log.warning("%s", nothing_to_serve(self.accounts.values()))
            except Exception as exc:  # a locked or briefly unreadable store must not kill the server
                log.warning("could not read the store: %s", exc)
            for back in self.pool.take_recoveries(self.clock()):
                log.info(
                    "account %s is usable again: %s (it was cooling down: %s)",
                    back.name,
                    back.why,
                    back.reason,
                )
            if self.clock() >= next_purge:
                self.pool.affinity.purge(self.clock())
                next_purge = self.clock() + AFFINITY_PURGE_S

    def update(self, account: Account) -> None:
        """Replace one account's in-memory copy (after a refresh or a status change)."""
        self.accounts[account.id] = account
        self.pool.set_accounts(_view(a) for a in self.accounts.values())

    # -- status: the one in-process writer ---------------------------------------------------------

    def set_health(self, account: Account, status: str, reason: str) -> None:
        """Change an account's health now in memory (the pool stops picking it) and soon in the store.

        The server's one writer of account status (the refresher writes none; a permanent refresh
        failure comes back here through :meth:`refresh`). Logged once per change, with ``reason``
        (see ``pool/health.py`` for the states); a repeat of the current status and reason does
        nothing. The store write runs in the serve nursery.
        """
        if self._apply_health(account, status, reason):
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
        self.update(dataclasses.replace(current, status=status, status_reason=reason))
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

    # -- tokens ------------------------------------------------------------------------------------

    async def fresh(self, account: Account) -> Account:
        """Return ``account`` with an access token valid for at least ``min(ON_USE_MARGIN_S,
        refresh_margin_s)`` more seconds (refreshing if needed, as :meth:`refresh`).

        Raises:
            RefreshError: the refresh failed (:class:`NeedsLogin`: the account now needs a login).
            TimeoutError: as :meth:`refresh`.
        """
        margin_s = min(ON_USE_MARGIN_S, self.refresh_margin_s)
        if not account.needs_refresh(now=self.clock(), margin_s=margin_s):
            return account
        return await self.refresh(account)

    async def refresh(self, account: Account, *, stale_access_token: str | None = None) -> Account:
        """Refresh ``account`` (single-flight) and update the in-memory copy.

        Raises:
            RefreshError: see :meth:`Refresher.refresh`; a :class:`NeedsLogin` is recorded first
                (status ``needs_login`` in memory and in the store, as :meth:`set_health`).
            TimeoutError: another process held the refresh lease too long.
        """
        current = self.accounts.get(account.id, account)
        if current.status == AccountStatus.LOGIN_EXPIRING:  # its refresh token is spent: no refresh
            return await self._last_token(current, stale_access_token)
        try:
            updated = await self.refresher.refresh(account, stale_access_token=stale_access_token)
        except RefreshError as exc:
            self.metrics.count_refresh("needs_login" if exc.permanent else "failed")
            if isinstance(exc, NeedsLogin):
                status = spent_refresh_status(
                    exc.code,
                    access_expires_at=current.access_expires_at,
                    now=self.clock(),
                    token_refused=stale_access_token == current.access_token,
                )
                if status is AccountStatus.LOGIN_EXPIRING:
                    await self._record_health(current, status, _expiring_reason(current))
                    return self.accounts.get(account.id, current)
                await self._record_health(account, AccountStatus.NEEDS_LOGIN, exc.status_reason)
            raise
        self.metrics.count_refresh("ok")
        self.update(updated)
        return updated

    async def _last_token(self, account: Account, stale_access_token: str | None) -> Account:
        """A ``login_expiring`` account: itself while its access token is valid and not refused,
        else it becomes ``needs_login`` (:func:`~codexgw.pool.health.spent_refresh_status`).

        Raises:
            NeedsLogin: the access token expired or was refused (a 401).
        """
        status = spent_refresh_status(
            "refresh_token_reused",
            access_expires_at=account.access_expires_at,
            now=self.clock(),
            token_refused=stale_access_token == account.access_token,
        )
        if status is AccountStatus.LOGIN_EXPIRING:
            return account
        refused = NeedsLogin(
            RefreshError(
                "the refresh token was already used and the access token has expired",
                status=401,
                code="refresh_token_reused",
                permanent=True,
            )
        )
        await self._record_health(account, AccountStatus.NEEDS_LOGIN, refused.status_reason)
        raise refused

    async def refresh_loop(self, *, check_every_s: float = 30.0) -> None:
        """Refresh accounts ``refresh_margin_s`` before their tokens expire, one at a time, spread
        out; check every ``check_every_s`` seconds. Forever (failures are logged)."""
        while True:
            due = [
                a
                for a in list(self.accounts.values())
                if a.eligible
                and a.needs_refresh(now=self.clock(), margin_s=self.refresh_margin_s)
                and self.refresher.backoff_remaining(a.id) == 0
            ]
            for account in due:
                try:
                    await self.refresh(account)
                except (RefreshError, TimeoutError) as exc:
                    log.warning("background refresh of %s failed: %s", account.name, exc)
                await trio.sleep(random.uniform(0.5, 2.0) if len(due) > 1 else 0)  # spread, never all at once
            await trio.sleep(check_every_s)


def _expiring_reason(account: Account) -> str:
    """The ``status_reason`` of a ``login_expiring`` account: what happened, until when it serves,
    and the command to run (no secret)."""
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(account.access_expires_at or 0))
    return (
        f"refresh token already used (refresh_token_reused: a refresh was cut short, e.g. by a crash); "
        f"serving on its access token until {until}, then it needs "
        f"`{command_name()} login pkce --name {account.name} --relogin`"
    )


def pool_rows(pool: Pool, now: float) -> list[dict[str, Any]]:
    """The pool's per-account rows for the metrics gauges (``Pool.snapshot`` plus
    ``cooldown_remaining_s``, seconds, 0 when not cooling down)."""
    rows = pool.snapshot(now)
    for row in rows:
        until = row.get("cooling_down_until")
        row["cooldown_remaining_s"] = max(0.0, until - now) if until is not None else 0.0
    return rows


def _view(account: Account) -> AccountView:
    return AccountView(
        id=account.id,
        name=account.name,
        enabled=account.enabled,
        status=account.status,
        weight=account.weight,
        plan_type=account.plan_type,
    )


def nothing_to_serve(accounts: Iterable[Account]) -> str:
    """The warning ``serve`` logs when no account can serve: what the store holds and the command to
    add (or bring back) one, as the user runs it."""
    cli = command_name()
    accounts = list(accounts)
    if not accounts:
        return (
            f"no account to serve with: the store has none; add one with `{cli} login pkce` or "
            f"`{cli} accounts import ~/.codex/auth.json` (picked up within a second, no restart)"
        )
    disabled = sum(1 for a in accounts if not a.enabled)
    broken = len(accounts) - disabled
    return (
        f"no account can serve: {disabled} disabled, {broken} needing a login or out of service; "
        f"`{cli} accounts enable NAME`, `{cli} login pkce --name NAME --relogin`, or add one with "
        f"`{cli} accounts import ~/.codex/auth.json`"
    )
