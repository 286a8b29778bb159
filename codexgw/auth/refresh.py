"""Token refresh that never reuses a refresh token.

Theory of operation (codex-protocol.md §3: refresh tokens rotate and are single-use; design §3):

1. **In-process single-flight.** Concurrent callers for one account share one refresh: the first
   starts it, the others wait on a ``trio.Event`` and get its result (or its error).
2. **Cross-process single-flight.** The refresh runs only while holding the account's lease in the
   store (``try_acquire_refresh_lease``), so a CLI ``accounts refresh`` and a running server never
   refresh the same account at once. The lease names its holder (host, pid, process start time:
   :mod:`codexgw.auth.holder`); a lease whose holder on this host is gone (killed, crashed) is
   taken over at once, one on another host outlives its crashed holder by at most ``lease_ttl_s``.
3. **Re-read before use.** With the lease held, the stored account is re-read. If its access token
   is no longer the one the caller found stale (another process rotated meanwhile) and it is fresh,
   that token is used and no network call is made.
4. **Persist before use.** The new pair is written with a compare-and-swap on the old refresh
   token before anyone uses it. A permanent refusal (``refresh_token_reused``/``_expired``/
   ``_invalidated``, ``invalid_grant`` …) is raised as :class:`NeedsLogin`; it is never retried.
   The refresher writes tokens and leases, never an account's status: the caller records the
   outcome (the server through ``Gateway.set_health``, a CLI command with ``Store.set_status``).
5. **Back off on transient failures.** After a 5xx, a garbled answer or an unreachable server, the
   account's refreshes fail at once, without network, for 5 s, doubling per failure up to 5 min
   (:data:`BACKOFF_MAX_S`); a success or an adopted rotation clears it.
6. **Linked Codex auth.json** (``auth/linked.py``). For an account with ``linked_path``, step 3 also
   re-reads that file under its lock and adopts a newer rotation found there; a successful refresh
   is written back to the file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from codexgw.auth import linked
from codexgw.auth.holder import holder_gone, new_owner
from codexgw.client.calls import request
from codexgw.client.errors import OAUTH_SERVER
from codexgw.errors import UpstreamConnectionError
from codexgw.oauth.tokens import RefreshError, build_refresh_request, parse_refresh_response
from codexgw.store.models import ON_USE_MARGIN_S
from codexgw.store.sqlite import Account, Store

log = logging.getLogger("codexgw.refresh")

BACKOFF_INITIAL_S = 5.0
"""First wait after a transient refresh failure, seconds; doubles on each further failure."""
BACKOFF_MAX_S = 300.0
"""Longest wait between refresh attempts after transient failures, seconds."""


class NeedsLogin(RefreshError):
    """The OAuth server refused the refresh token for good: the account needs a new login.

    A permanent :class:`~codexgw.oauth.tokens.RefreshError` (same ``message``, ``status``, ``code``)
    that the caller records as status ``needs_login`` with :attr:`status_reason`. Other permanent
    errors (the account was removed meanwhile, ``code="account_removed"``) say nothing about a login.

    Attributes:
        status_reason: ``"refresh failed: <code or message>"``, the account's ``status_reason``.
    """

    def __init__(self, refused: RefreshError) -> None:
        super().__init__(refused.message, status=refused.status, code=refused.code, permanent=True)
        self.status_reason = f"refresh failed: {refused.code or refused}"


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
        self._owner = new_owner()
        self._flights: dict[int, _Flight] = {}
        self._backoff: dict[int, tuple[float, float]] = {}
        """account id → (retry not before, epoch s; current delay, s) after transient failures."""
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
            NeedsLogin: the OAuth server refused the refresh token for good (nothing is written
                about it: the caller records the status).
            RefreshError: the refresh failed otherwise (``permanent`` tells whether to stop trying;
                permanent when the account was removed).
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
                    account.id,
                    self._owner,
                    now=self._clock(),
                    ttl_s=self._lease_ttl_s,
                    holder_gone=lambda owner: _gone(owner, account.name),
                )
            )
            current = await trio.to_thread.run_sync(self._store.get_account_by_id, account.id)
            if current is None:
                if acquired:
                    await self._release(account.id)
                raise _removed()
            if current.access_token != stale and not current.needs_refresh(
                now=self._clock(), margin_s=ON_USE_MARGIN_S
            ):
                if acquired:
                    await self._release(account.id)
                return current
            if acquired:
                break
            if self._clock() >= deadline:
                raise TimeoutError(f"another process is refreshing account {account.name!r}; gave up waiting")
            await trio.sleep(0.2)
        try:
            if current.linked_path:
                return await self._refresh_linked(current, stale)
            self._check_backoff(current)
            return await self._refresh_now(current)
        finally:
            with trio.CancelScope(shield=True):
                await self._release(account.id)

    # -- linked Codex auth.json (auth/linked.py) ---------------------------------------------------

    async def _refresh_linked(self, current: Account, stale: str) -> Account:
        """Refresh an account tied to a Codex ``auth.json``, under the file's lock: adopt a rotation
        another process made, else refresh and write the new pair back (codex-protocol.md §3, §5)."""
        path = current.linked_path
        assert path is not None
        try:
            async with linked.locked(path):
                current = await self._sync_from_file(current)
                if current.access_token != stale and not current.needs_refresh(
                    now=self._clock(), margin_s=ON_USE_MARGIN_S
                ):
                    return current
                self._check_backoff(current)
                try:
                    updated = await self._refresh_now(current)
                except NeedsLogin:  # Codex (which takes no lock) may have rotated meanwhile
                    adopted = await self._sync_from_file(current, repair=False)
                    if adopted.refresh_token != current.refresh_token:
                        return adopted
                    raise
                await self._write_back(updated)
                return updated
        except linked.LinkedFileError as exc:
            log.warning(
                "account %s: linked auth.json not usable (%s); refreshing unlinked", current.name, exc
            )
            self._check_backoff(current)
            return await self._refresh_now(current)

    async def _sync_from_file(self, current: Account, *, repair: bool = True) -> Account:
        """Adopt the linked file's tokens when they are a newer rotation than the stored ones; with
        ``repair``, write ours to the file when it holds an older one (a lost write-back).

        Returns the account as stored afterwards (unchanged when the file is not newer or unusable).
        """
        path = current.linked_path
        assert path is not None
        try:
            tokens = await trio.to_thread.run_sync(linked.read_linked, path, current)
        except linked.LinkedFileError as exc:
            log.warning("account %s: %s", current.name, exc)
            return current
        if not linked.file_is_newer(tokens, current):
            if repair and tokens.refresh_token != current.refresh_token:  # a lost write-back
                await self._write_back(current)
            return current
        when = tokens.last_refresh if tokens.last_refresh is not None else self._clock()
        saved, stored = await self._save(current, tokens, now=when)
        if stored is None:
            raise _removed()
        if saved:
            self._backoff.pop(current.id, None)
            log.info("account %s: adopted tokens another process rotated in %s", current.name, path)
        return stored

    async def _write_back(self, updated: Account) -> None:
        path = updated.linked_path
        if not path:
            return
        try:
            with trio.CancelScope(shield=True):
                # never overwrite a file that went missing or now holds another account
                await trio.to_thread.run_sync(linked.read_linked, path, updated)
                await trio.to_thread.run_sync(
                    lambda: linked.write_auth_json(path, updated, now=self._clock())
                )
        except linked.LinkedFileError as exc:
            log.warning("account %s: could not write the new tokens back: %s", updated.name, exc)

    # -- backoff ---------------------------------------------------------------------------------

    def backoff_remaining(self, account_id: int) -> float:
        """Seconds until a transient failure's backoff for ``account_id`` ends (0 when none)."""
        entry = self._backoff.get(account_id)
        return max(0.0, entry[0] - self._clock()) if entry else 0.0

    def _check_backoff(self, account: Account) -> None:
        remaining = self.backoff_remaining(account.id)
        if remaining > 0:
            raise RefreshError(
                f"token refresh failed recently; next attempt in {remaining:.0f} s",
                status=0,
                code="refresh_backoff",
                permanent=False,
            )

    def _note_transient(self, account: Account) -> None:
        delay = self._backoff.get(account.id, (0.0, BACKOFF_INITIAL_S / 2))[1] * 2
        delay = min(delay, BACKOFF_MAX_S)
        self._backoff[account.id] = (self._clock() + delay, delay)

    # -- the network call ------------------------------------------------------------------------

    async def _refresh_now(self, current: Account) -> Account:
        """Spend ``current.refresh_token`` once and persist the new pair (compare-and-swap).

        Raises:
            NeedsLogin: :func:`parse_refresh_response` found a permanent refusal.
            RefreshError: as :func:`parse_refresh_response`, or ``permanent=False`` when the server is
                unreachable. A transient failure starts or doubles the account's backoff.
        """
        spec = build_refresh_request(self._auth_url, current.refresh_token)
        self.refresh_calls += 1
        try:
            response = await request(
                self._http, spec.method, spec.url, peer=OAUTH_SERVER, headers=spec.headers, json=spec.json
            )
            tokens = parse_refresh_response(response.status_code, response.content)
        except UpstreamConnectionError as exc:
            self._note_transient(current)
            raise RefreshError(
                exc.message,
                permanent=False,
                code=None,
                status=0,
            ) from None
        except RefreshError as exc:
            if exc.permanent:
                raise NeedsLogin(exc) from None
            self._note_transient(current)
            raise
        self._backoff.pop(current.id, None)
        now = self._clock()
        saved, updated = await self._save(current, tokens, now=now)
        if not saved:
            log.warning("account %s was changed while refreshing; keeping the stored tokens", current.name)
        if updated is None:
            raise _removed()
        log.info("refreshed account %s", current.name)
        return updated

    async def _save(self, current: Account, tokens: Any, *, now: float) -> tuple[bool, Account | None]:
        """Store ``tokens`` (compare-and-swap on ``current``'s refresh token) and re-read the account.

        Shielded: once a refresh token is spent, the new pair must never be lost to a cancel.
        ``tokens`` has ``access_token``/``refresh_token``/``id_token`` (a token response or TokenSet).

        Returns:
            ``(saved, stored)``: whether the swap happened, and the account as now stored (``None``
            if it was removed).
        """
        with trio.CancelScope(shield=True):
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
            stored = await trio.to_thread.run_sync(self._store.get_account_by_id, current.id)
        return saved, stored

    async def _release(self, account_id: int) -> None:
        await trio.to_thread.run_sync(self._store.release_refresh_lease, account_id, self._owner)


def _gone(owner: str, name: str) -> bool:
    """:func:`holder_gone`, logging the take-over (the owner's host and pid, never a secret)."""
    if not holder_gone(owner):
        return False
    host, pid = owner.split("|")[:2]
    log.warning("account %s: taking over the refresh lease of process %s on %s, which is gone", name, pid, host)
    return True


def _removed() -> RefreshError:
    return RefreshError("the account was removed", permanent=True, code="account_removed", status=0)
