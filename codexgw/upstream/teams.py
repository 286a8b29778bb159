"""The running server's teams state: who may call, within what scope, and what they used (issue 12).

:class:`Teams` carries out the ``policy/`` core's decisions for one ``serve``:

* **Following the store.** :meth:`Teams.reload` runs after every accounts reload
  (``AccountState.followers``: the store's generation changed, within ``accounts_poll_s``): it
  reads the keys and the number of users and recomputes every key's scope from the accounts' owners,
  so a key created, changed, revoked or rotated by the CLI or the API is in force within a second.
* **The request path** (in memory only, no I/O): :meth:`Teams.authenticate` (the key and its scope),
  ``Teams.policy.admit`` (allowlist, limits, effort; called by the route), :meth:`Teams.finished`
  (the usage ledger, the limiter's release, the per-key metrics and the ``request`` event, once per
  exchange).
* **The usage flush.** :meth:`Teams.flush_loop` (a task of the serve nursery) writes the ledger to
  the store every ``flush_s`` seconds, one transaction per batch, and ``serve`` calls
  :meth:`Teams.flush` once more at shutdown. No SQLite write happens on the request path.
* **The first admin.** With no user in the store, :meth:`Teams.setup_token` is a random token valid
  15 minutes that ``serve`` prints and ``POST /api/setup`` takes once.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from codexgw.policy.durations import day_start
from codexgw.policy.keys import MASTER_KEY, ApiKey, KeyRing, token_of
from codexgw.policy.limits import Limiter
from codexgw.policy.request import RequestPolicy
from codexgw.policy.scope import AccountRef, key_scope
from codexgw.policy.throttle import LoginThrottle
from codexgw.policy.usage import COUNTERS, NO_KEY, Ledger, usage_counts
from codexgw.store.keys import list_keys
from codexgw.store.usage import add_usage
from codexgw.store.users import count_users
from codexgw.upstream.events import EventHub

if TYPE_CHECKING:
    from codexgw.metrics import Metrics
    from codexgw.store.sqlite import Account, Store

__all__ = ["SETUP_TTL_S", "Teams"]

log = logging.getLogger("codexgw.upstream.teams")

SETUP_TTL_S = 15 * 60.0
"""The first-admin setup token is valid this long after ``serve`` printed it, seconds."""


class Teams:
    """Keys, scopes, the request policy and the usage flush of one ``serve`` (module docstring).

    Args:
        store: the shared store.
        metrics: counts ``codexgw_key_requests_total`` and ``codexgw_key_tokens_total``.
        events: the live-event hub (``GET /api/events``).
        master_key: the ``serve --api-key`` secret, or ``None``.
        flush_s: seconds between usage flushes.
        clock: epoch seconds; injected for tests.
    """

    def __init__(
        self,
        store: Store,
        *,
        metrics: Metrics,
        events: EventHub,
        master_key: str | None,
        flush_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        limiter: Limiter | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.events = events
        self.master_key = master_key
        self.flush_s = flush_s
        self.clock = clock
        self.ring = KeyRing(master=master_key)
        self.scopes: dict[str, frozenset[int] | None] = {}
        self.limiter = limiter if limiter is not None else Limiter()  # shared: serve --workers
        self.ledger = Ledger()
        self.policy = RequestPolicy(self.limiter, self.ledger)
        self.login_throttle = LoginThrottle()
        self.users = 0
        """How many users the store holds (as of the last reload)."""
        self.owner_by_name: dict[str, str | None] = {}
        """Account name → owner, as of the last reload."""
        self._setup: tuple[str, float] | None = None
        self._flush_lock = trio.Lock()

    # -- following the store -----------------------------------------------------------------------

    async def reload(self, accounts: Mapping[int, Account]) -> None:
        """Re-read keys and users and recompute the scopes over ``accounts`` (the in-memory ones)."""
        keys, users = await trio.to_thread.run_sync(lambda: (list_keys(self.store), count_users(self.store)))
        refs = [AccountRef(a.id, a.name, a.owner) for a in accounts.values()]
        self.owner_by_name = {a.name: a.owner for a in accounts.values()}
        self.scopes = {k.name: key_scope(k, refs) for k in keys}
        self.ring = KeyRing(keys, self.master_key)
        self.limiter.retain(self.scopes)
        if users and self._setup is not None:
            self._setup = None
        self.users = users

    # -- the request path --------------------------------------------------------------------------

    @property
    def keys_required(self) -> bool:
        """True when a ``/v1`` request must present a key (contract §1)."""
        return self.ring.required

    def authenticate(self, headers: Mapping[str, str]) -> tuple[ApiKey | None, frozenset[int] | None]:
        """The key of a request (``headers``: lower-case names) and its scope (``None``: whole pool).

        Returns ``(None, None)`` on an open gateway (no stored key, no ``--api-key``).

        Raises:
            AuthenticationError: 401 ``invalid_api_key``.
        """
        key = self.ring.authenticate(token_of(headers), self.clock())
        if key is None or key is MASTER_KEY:
            return key, None
        return key, self.scopes.get(key.name, frozenset())

    def answer_headers(self, key: ApiKey, admitted: dict[str, str] | None) -> dict[str, str]:
        """The policy headers of an answer to ``key``: those of its admission (``admitted``), else
        (refused before, or failed before the policy ran) the key's current ``x-ratelimit-*``."""
        if admitted is not None:
            return admitted
        if key.rpm is None and key.tpm is None:
            return {}
        return self.limiter.current_headers(key, self.clock())

    def finished(
        self,
        *,
        key: ApiKey | None,
        admitted: bool,
        accounted: bool,
        status: int,
        failed: bool,
        account: str | None,
        model: str | None,
        usage: Mapping[str, Any] | None,
        fields: Mapping[str, Any],
    ) -> None:
        """One exchange ended (``Exchange.finish``): account for it when ``accounted`` (a model
        request), count the key's metrics, and publish its access-log ``fields`` as a ``request`` event.

        ``failed``: the answer was an error (status >= 400, or a stream that failed).
        """
        name = key.name if key is not None else NO_KEY
        if accounted:
            self.policy.finish(
                key,
                admitted=admitted,
                now=self.clock(),
                account=account,
                model=model,
                usage=usage,
                error=failed,
            )
            self.metrics.observe_key(name, usage_counts(usage))
        if self.events.listening:
            owners = (key.owner if key is not None else None, self.owner_by_name.get(account or ""))
            self.events.publish("request", {"at": self.clock(), **fields, "key": name}, owners=owners)

    # -- usage -------------------------------------------------------------------------------------

    def today(self, name: str) -> dict[str, int]:
        """The key's counters since 00:00 UTC (stored and in memory), by counter name."""
        return dict(zip(COUNTERS, self.ledger.today(name, self.clock()), strict=True))

    def status_keys(self) -> list[dict[str, Any]]:
        """``/status``'s per-key totals for today: ``[{"name", "prefix", "owner", "status",
        "requests", "errors", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens"}]``
        (stored keys by name, then ``-`` when requests without a stored key were counted today)."""
        now = self.clock()
        rows = [
            {
                "name": k.name,
                "prefix": k.prefix,
                "owner": k.owner,
                "status": k.status(now),
                **self.today(k.name),
            }
            for k in sorted(self.ring.keys.values(), key=lambda k: k.name)
        ]
        if NO_KEY in self.ledger.keys_today(now):
            rows.append(
                {"name": NO_KEY, "prefix": None, "owner": None, "status": "active", **self.today(NO_KEY)}
            )
        return rows

    async def flush(self) -> None:
        """Write what the ledger holds to the store (one transaction); on failure keep it for later."""
        async with self._flush_lock:
            batch, last_used = self.ledger.take()
            if not batch and not last_used:
                self.ledger.put_back()
                return
            day = day_start(self.clock())
            try:
                totals = await trio.to_thread.run_sync(
                    lambda: add_usage(self.store, batch, last_used, day=day)
                )
            except Exception as exc:  # a locked store: keep the counts for the next flush
                self.ledger.put_back()
                log.warning(
                    "could not save usage counters (%d rows kept for the next try): %s", len(batch), exc
                )
                return
            self.ledger.settle(day, totals)

    async def flush_loop(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read today's stored totals, report started, then flush every ``flush_s`` seconds. Forever."""
        day = day_start(self.clock())
        try:
            totals = await trio.to_thread.run_sync(lambda: add_usage(self.store, {}, {}, day=day))
            self.ledger.settle(day, totals)
        except Exception as exc:
            log.warning("could not read today's usage: %s", exc)
        task_status.started()
        while True:
            await trio.sleep(self.flush_s)
            await self.flush()

    # -- the first admin ---------------------------------------------------------------------------

    def setup_token(self) -> str | None:
        """A new one-time token for ``POST /api/setup`` when no user exists (else ``None``)."""
        if self.users:
            return None
        token = secrets.token_urlsafe(24)
        self._setup = (token, self.clock() + SETUP_TTL_S)
        return token

    def adopt_setup_token(self, token: str) -> None:
        """Accept ``token`` (drawn by the ``serve --workers`` supervisor) as the setup token while no
        user exists (15 minutes from now)."""
        if not self.users:
            self._setup = (token, self.clock() + SETUP_TTL_S)

    def check_setup_token(self, token: str) -> bool:
        """True when ``token`` is the unexpired setup token (constant-time compare)."""
        if self._setup is None or not isinstance(token, str):
            return False
        expected, expires_at = self._setup
        return self.clock() < expires_at and hmac.compare_digest(token.encode(), expected.encode())

    def setup_done(self) -> None:
        """The first admin exists: the token is spent."""
        self._setup = None
        self.users = max(self.users, 1)
