"""Token refresh that never reuses a refresh token.

Theory of operation (codex-protocol.md §3: refresh tokens rotate and are single-use; design §3):

1. **In-process single-flight.** Concurrent callers for one account share one refresh: the first
   starts it, the others wait on a ``trio.Event`` and get its result (or its error).
2. **Cross-process single-flight.** The refresh runs only while holding the account's lease in the
   store (``try_acquire_refresh_lease``), so a CLI ``accounts refresh`` and a running server never
   refresh the same account at once. A lease outlives a crashed holder by at most ``lease_ttl_s``.
3. **Re-read before use.** With the lease held, the stored account is re-read. If its access token
   is no longer the one the caller found stale (another process rotated meanwhile) and it is fresh,
   that token is used and no network call is made.
4. **Persist before use.** The new pair is written with a compare-and-swap on the old refresh
   token before anyone uses it. A permanent failure (``refresh_token_reused``/``_expired``/
   ``_invalidated``, ``invalid_grant`` …) marks the account ``needs_login``; it is never retried.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import trio

from ..store.sqlite import Account, Store
from .tokens import RefreshError, build_refresh_request, parse_refresh_response

log = logging.getLogger("codexgw.refresh")


@dataclass
class _Flight:
    done: trio.Event
    result: Account | None = None
    error: BaseException | None = None


class Refresher:
    """Refreshes account tokens, single-flight per account across tasks and processes.

    Args:
        store: the account store (its lease and compare-and-swap make the cross-process guarantee).
        http: the client used for ``POST {auth_url}/oauth/token``.
        auth_url: OAuth issuer base URL.
        clock: returns epoch seconds (injected for tests).
        lease_ttl_s: how long a lease protects a refresh in flight, seconds.
        lease_wait_s: how long to wait for another process's lease before giving up, seconds.
    """

    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        *,
        auth_url: str,
        clock: Callable[[], float] = time.time,
        lease_ttl_s: float = 60.0,
        lease_wait_s: float = 90.0,
    ) -> None:
        self._store = store
        self._http = http
        self._auth_url = auth_url.rstrip("/")
        self._clock = clock
        self._lease_ttl_s = lease_ttl_s
        self._lease_wait_s = lease_wait_s
        self._owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._flights: dict[int, _Flight] = {}
        self.refresh_calls = 0
        """Number of refresh requests this process sent to the OAuth server."""

    async def refresh(self, account: Account, *, stale_access_token: str | None = None) -> Account:
        """Return the account with a fresh access token, refreshing it if needed.

        Args:
            account: the account as the caller knows it.
            stale_access_token: the access token the caller found expired or that got a 401; a stored
                token different from it is taken as already rotated by someone else. Defaults to
                ``account.access_token``.

        Returns:
            The account as stored after the refresh (or after another process's refresh).

        Raises:
            RefreshError: the OAuth server refused (``permanent`` tells whether to stop trying; a
                permanent failure has already marked the account ``needs_login``) or failed.
            TimeoutError: another process held the refresh lease for longer than ``lease_wait_s``.
        """
        flight = self._flights.get(account.id)
        if flight is not None:
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result
        flight = self._flights[account.id] = _Flight(trio.Event())
        try:
            flight.result = await self._refresh_leased(account, stale_access_token or account.access_token)
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            del self._flights[account.id]
            flight.done.set()

    async def _refresh_leased(self, account: Account, stale: str) -> Account:
        deadline = self._clock() + self._lease_wait_s
        while True:
            acquired = await trio.to_thread.run_sync(
                lambda: self._store.try_acquire_refresh_lease(
                    account.id, self._owner, now=self._clock(), ttl_s=self._lease_ttl_s
                )
            )
            current = await trio.to_thread.run_sync(self._store.get_account_by_id, account.id)
            if current is None:
                if acquired:
                    await self._release(account.id)
                raise RefreshError("the account was removed", permanent=True, code="account_removed", status=0)
            if current.access_token != stale and not _expiring(current, self._clock()):
                if acquired:
                    await self._release(account.id)
                return current
            if acquired:
                break
            if self._clock() >= deadline:
                raise TimeoutError(f"another process is refreshing account {account.name!r}; gave up waiting")
            await trio.sleep(0.2)
        try:
            return await self._refresh_now(current)
        finally:
            with trio.CancelScope(shield=True):
                await self._release(account.id)

    async def _refresh_now(self, current: Account) -> Account:
        spec = build_refresh_request(self._auth_url, current.refresh_token)
        self.refresh_calls += 1
        try:
            response = await self._http.request(spec.method, spec.url, headers=spec.headers, json=spec.json)
        except httpx.HTTPError as exc:
            raise RefreshError(
                f"the OAuth server could not be reached ({type(exc).__name__})",
                permanent=False,
                code=None,
                status=0,
            ) from None
        try:
            tokens = parse_refresh_response(response.status_code, response.content)
        except RefreshError as exc:
            if exc.permanent:
                reason = f"refresh failed: {exc.code or exc}"
                await trio.to_thread.run_sync(self._store.set_status, current.id, "needs_login", reason)
                log.warning("account %s needs a new login: %s", current.name, exc)
            raise
        now = self._clock()
        with trio.CancelScope(shield=True):  # the old refresh token is spent: never lose the new one
            saved = await trio.to_thread.run_sync(
                lambda: self._store.save_tokens(
                    current.id,
                    access_token=tokens.access_token,
                    refresh_token=tokens.refresh_token,
                    id_token=tokens.id_token,
                    expected_refresh_token=current.refresh_token,
                    now=now,
                )
            )
            updated = await trio.to_thread.run_sync(self._store.get_account_by_id, current.id)
        if not saved:
            log.warning("account %s was changed while refreshing; keeping the stored tokens", current.name)
        if updated is None:
            raise RefreshError("the account was removed", permanent=True, code="account_removed", status=0)
        log.info("refreshed account %s", current.name)
        return updated

    async def _release(self, account_id: int) -> None:
        await trio.to_thread.run_sync(self._store.release_refresh_lease, account_id, self._owner)


def _expiring(account: Account, now: float, margin_s: float = 60.0) -> bool:
    exp = account.access_expires_at
    return exp is not None and exp - now <= margin_s
