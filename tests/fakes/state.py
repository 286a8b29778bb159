"""The fake's world: accounts, issued tokens, scripted behaviours and recorded traffic.

Everything time-dependent reads ``FakeUpstream.clock`` (unix seconds), never the wall clock, so a
test moves time by changing what its clock returns. Token rules follow codex-protocol.md §3-§4:
access tokens are JWTs valid until their ``exp``; refresh tokens rotate and are single-use.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from . import jwt
from .behaviours import DEFAULT_TEXT, Behaviour, Text
from .devices import AUTH_CODE_TTL_S, INTERVAL, DeviceAuthorizations

ID_TOKEN_TTL_S = 3600
PRIMARY_WINDOW_MINUTES = 300
"""The Codex 5-hour window (codex-protocol.md §8.1)."""
SECONDARY_WINDOW_MINUTES = 10080
"""The Codex weekly window."""


@dataclass
class FakeAccount:
    """One ChatGPT login known to the fake. Token fields always hold the *current* tokens."""

    chatgpt_account_id: str
    email: str
    plan_type: str
    user_id: str
    access_ttl_s: float
    access_token: str = ""
    refresh_token: str = ""
    id_token: str = ""
    refresh_count: int = 0
    responses_count: int = 0
    primary_used_percent: float = 12.0
    secondary_used_percent: float = 4.0
    limited_until: float | None = None
    """Set by a ``UsageLimit``: ``/codex/responses`` answers 429 until the clock passes it."""
    behaviours: deque[Behaviour] = field(default_factory=deque, repr=False)


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (any path). ``headers`` has lower-cased names."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    account_id: str | None = None
    """The account its bearer token authenticated (backend paths only)."""


@dataclass
class TokenRequest:
    """One ``POST /oauth/token``: which grant, which refresh token, and how it ended."""

    grant_type: str | None
    refresh_token: str | None
    outcome: str
    """``pending`` until answered, then ``ok``, ``reused``, ``invalid``, ``revoked``, ``scripted``,
    ``bad_client`` or ``bad_request``."""
    status: int
    """The HTTP status answered (0 while pending)."""
    account_id: str | None = None


@dataclass
class _AccessGrant:
    account: FakeAccount
    expires_at: float
    expired: bool = False


@dataclass
class _RefreshGrant:
    account: FakeAccount
    family: str
    state: str = "active"  # active | used | revoked


class FakeUpstream:
    """State and script of a fake OAuth issuer plus Codex backend (serve it with ``serve_fake``).

    Attributes a test may set:
        refresh_gate: when an Event, refresh requests wait for it before being answered
            (``refresh_waiting`` counts the parked ones; ``wait_for`` it).
        refresh_answer_gate: when an Event, a refresh that rotated the tokens waits for it before
            answering (``refresh_answering`` counts them): the refresh token is already spent, as
            when a client dies while the issuer's answer is on its way (codex-protocol.md §3).
        responses_gate: the same for every ``/codex/responses`` call (before the auth check).
        authorize_account: the account ``/oauth/authorize`` logs in (default: the first added).
        authorize_error: when set, ``/oauth/authorize`` redirects with ``error=<it>`` (user refused).
        redirect_ports: allowed ports of ``http://localhost:PORT/auth/callback``; None allows any.
        device_login_enabled: False makes the device user-code endpoint answer 404 (§2).
        device_interval: the ``interval`` the user-code endpoint answers (a JSON string, §2).
        reuse_revokes_family: reusing a refresh token also revokes the newer one of that login.
        enforce_usage_limits: an account that got a ``UsageLimit`` keeps answering 429 until reset.
        delta_interval_s: seconds between two streamed text deltas, as a real model types them;
            0 (the default, for tests) sends them at once. ``make demo`` paces its stream.
        sleep: how the fake waits those seconds (``trio.sleep``; a test may record instead).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.accounts: list[FakeAccount] = []
        self.requests: list[RecordedRequest] = []
        self.token_requests: list[TokenRequest] = []
        self.revocations: list[dict[str, Any]] = []
        self.client_disconnects = 0
        """Requests whose client went away before the fake finished answering."""
        self.refresh_gate: trio.Event | None = None
        self.refresh_waiting = 0
        self.refresh_answer_gate: trio.Event | None = None
        self.refresh_answering = 0
        self.responses_gate: trio.Event | None = None
        self.authorize_account: FakeAccount | None = None
        self.authorize_error: str | None = None
        self.redirect_ports: set[int] | None = {1455, 1457}
        self.device_login_enabled = True
        self.device_interval: str = INTERVAL
        self.reuse_revokes_family = True
        self.enforce_usage_limits = True
        self.delta_interval_s = 0.0
        self.sleep: Callable[[float], Awaitable[None]] = trio.sleep
        self.devices = DeviceAuthorizations(self)
        self.auth_codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, _AccessGrant] = {}
        self._refresh: dict[str, _RefreshGrant] = {}
        self._id_tokens: dict[str, FakeAccount] = {}
        self._shared: deque[Behaviour] = deque()
        self._refresh_failures: deque[tuple[int, Any]] = deque()
        self._code_failures: deque[tuple[int, Any]] = deque()
        self._changed = trio.Event()

    # ----------------------------------------------------------------- accounts and tokens

    def add_account(
        self,
        *,
        email: str = "alice@example.com",
        plan_type: str = "plus",
        chatgpt_account_id: str | None = None,
        access_ttl_s: float = 3600,
    ) -> FakeAccount:
        """Create an account and mint its first id/access/refresh tokens (codex-protocol.md §4)."""
        account = FakeAccount(
            chatgpt_account_id=chatgpt_account_id or str(uuid.uuid4()),
            email=email,
            plan_type=plan_type,
            user_id="user-" + jwt.b64url(os.urandom(18)),
            access_ttl_s=access_ttl_s,
        )
        self.accounts.append(account)
        self.mint_tokens(account, family=uuid.uuid4().hex)
        if self.authorize_account is None:
            self.authorize_account = account
        return account

    def account_by_id(self, chatgpt_account_id: str) -> FakeAccount | None:
        return next((a for a in self.accounts if a.chatgpt_account_id == chatgpt_account_id), None)

    def mint_tokens(self, account: FakeAccount, *, family: str) -> None:
        """Issue a new id_token, access_token and refresh_token and make them the current ones."""
        now = int(self.clock())
        auth = {
            "chatgpt_account_id": account.chatgpt_account_id,
            "chatgpt_plan_type": account.plan_type,
            "chatgpt_user_id": account.user_id,
            "user_id": account.user_id,
        }
        account.id_token = jwt.encode(
            {
                "aud": [jwt.CLIENT_ID],
                "auth_provider": "password",
                "email": account.email,
                "email_verified": True,
                "exp": now + ID_TOKEN_TTL_S,
                jwt.AUTH_CLAIM: {
                    **auth,
                    "chatgpt_subscription_active_start": None,
                    "groups": [],
                    "organization_id": "org-" + jwt.b64url(os.urandom(18)),
                    "organizations": [],
                    "completed_platform_onboarding": True,
                    "is_org_owner": True,
                },
                "iat": now,
                "iss": jwt.ISSUER,
                "jti": str(uuid.uuid4()),
                "rat": now,
                "sid": str(uuid.uuid4()),
                "sub": "auth0|" + jwt.b64url(os.urandom(12)),
            }
        )
        expires_at = now + account.access_ttl_s
        account.access_token = jwt.encode(
            {
                "aud": ["https://api.openai.com/v1"],
                "client_id": jwt.CLIENT_ID,
                "exp": int(expires_at),
                jwt.AUTH_CLAIM: auth,
                jwt.PROFILE_CLAIM: {"email": account.email, "email_verified": True},
                "iat": now,
                "iss": jwt.ISSUER,
                "jti": str(uuid.uuid4()),
                "nbf": now,
                "pwd_auth_time": now * 1000,
                "scp": ["openid", "profile", "email", "offline_access"],
                "session_id": "authsess_" + jwt.b64url(os.urandom(18)),
                "sub": "auth0|" + jwt.b64url(os.urandom(12)),
            }
        )
        account.refresh_token = jwt.refresh_token()
        self._access[account.access_token] = _AccessGrant(account, expires_at)
        self._refresh[account.refresh_token] = _RefreshGrant(account, family)
        self._id_tokens[account.id_token] = account

    def expire_access_token(self, account: FakeAccount) -> None:
        """Make the account's current access token answer 401; its refresh token keeps working."""
        self._access[account.access_token].expired = True

    def account_for_access_token(self, token: str) -> tuple[FakeAccount | None, str]:
        """Return (account, "") for a valid token, else (None, why) with why in unknown|expired|revoked."""
        grant = self._access.get(token)
        if grant is None:
            return None, "unknown"
        if grant.expired or self.clock() >= grant.expires_at:
            return None, "expired"
        return grant.account, ""

    def account_for_id_token(self, token: str) -> FakeAccount | None:
        return self._id_tokens.get(token)

    def use_refresh_token(self, token: str) -> tuple[FakeAccount | None, str]:
        """Consume ``token`` atomically: (account, "ok") or (None|account, reused|revoked|invalid)."""
        grant = self._refresh.get(token)
        if grant is None:
            return None, "invalid"
        if grant.state == "used":
            if self.reuse_revokes_family:
                for other in self._refresh.values():
                    if other.family == grant.family and other.state == "active":
                        other.state = "revoked"
            return grant.account, "reused"
        if grant.state == "revoked":
            return grant.account, "revoked"
        grant.state = "used"
        grant.account.refresh_count += 1
        self.mint_tokens(grant.account, family=grant.family)
        return grant.account, "ok"

    def revoke(self, token: str) -> bool:
        """Revoke a refresh or access token (codex-protocol.md §3). True when it was known."""
        if (rt := self._refresh.get(token)) is not None:
            rt.state = "revoked" if rt.state == "active" else rt.state
            return True
        if (at := self._access.get(token)) is not None:
            at.expired = True
            return True
        return False

    def issue_auth_code(
        self, account: FakeAccount, *, code_challenge: str, redirect_uri: str, scope: str
    ) -> str:
        """Register a single-use authorization code bound to a PKCE challenge and redirect URI (§1)."""
        code = "ac_" + jwt.b64url(os.urandom(32))
        self.auth_codes[code] = {
            "account": account,
            "code_challenge": code_challenge,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "expires_at": self.clock() + AUTH_CODE_TTL_S,
            "used": False,
        }
        return code

    def approve_device(self, user_code: str, account: FakeAccount) -> None:
        """Play the user approving a device login (codex-protocol.md §2). KeyError if unknown."""
        self.devices.approve(user_code, account)

    def deny_device(self, user_code: str) -> None:
        """Play the user refusing a device login. KeyError if unknown."""
        self.devices.deny(user_code)

    def fail_next_refresh(self, status: int, body: Any) -> None:
        """Answer the next refresh with ``status`` and ``body`` (dict → JSON, str/bytes verbatim).

        The presented refresh token is not consumed. Calls queue up.
        """
        self._refresh_failures.append((status, body))

    def pop_refresh_failure(self) -> tuple[int, Any] | None:
        return self._refresh_failures.popleft() if self._refresh_failures else None

    def fail_next_code_exchange(self, status: int, body: Any) -> None:
        """Answer the next ``authorization_code`` exchange with ``status`` and ``body`` (dict → JSON,
        str/bytes verbatim); the code is not consumed. Calls queue up."""
        self._code_failures.append((status, body))

    def pop_code_failure(self) -> tuple[int, Any] | None:
        return self._code_failures.popleft() if self._code_failures else None

    # ----------------------------------------------------------------- auth.json (§5)

    def auth_json(self, account: FakeAccount) -> dict[str, Any]:
        """The Codex CLI ``auth.json`` for ``account`` (codex-protocol.md §5)."""
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": None,
            "tokens": {
                "id_token": account.id_token,
                "access_token": account.access_token,
                "refresh_token": account.refresh_token,
                "account_id": account.chatgpt_account_id,
            },
            "last_refresh": stamp,
        }

    def write_auth_json(self, account: FakeAccount, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`auth_json` pretty-printed, mode 0600 like codex-rs; return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.auth_json(account), f, indent=2)
        return target

    # ----------------------------------------------------------------- scripting

    def script(self, account: FakeAccount | None, *behaviours: Behaviour) -> None:
        """Queue behaviours for ``account``'s next responses calls (None: any account's)."""
        (account.behaviours if account is not None else self._shared).extend(behaviours)

    def next_behaviour(self, account: FakeAccount) -> Behaviour:
        """Pop the account's FIFO, else the shared FIFO, else the default text answer."""
        if account.behaviours:
            return account.behaviours.popleft()
        if self._shared:
            return self._shared.popleft()
        return Text(DEFAULT_TEXT)

    def usage_limited(self, account: FakeAccount) -> bool:
        """True while a past ``UsageLimit`` still holds; clears the limit once the clock passes it."""
        if account.limited_until is None:
            return False
        if self.clock() >= account.limited_until:
            account.limited_until = None
            account.primary_used_percent = 0.0
            return False
        return self.enforce_usage_limits

    def clear_usage_limit(self, account: FakeAccount) -> None:
        account.limited_until = None
        account.primary_used_percent = 0.0

    # ----------------------------------------------------------------- recording and waiting

    def record(self, entry: RecordedRequest | TokenRequest) -> None:
        (self.requests if isinstance(entry, RecordedRequest) else self.token_requests).append(entry)
        self.notify()

    def finish_token_request(
        self, entry: TokenRequest, outcome: str, status: int, account_id: str | None = None
    ) -> None:
        """Complete a recorded :class:`TokenRequest` once its answer is known."""
        entry.outcome, entry.status = outcome, status
        entry.account_id = account_id or entry.account_id
        self.notify()

    def notify(self) -> None:
        """Wake every :meth:`wait_for` so it re-checks its predicate."""
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true, re-checking after every recorded request."""
        while not predicate():
            await self._changed.wait()

    def responses_requests(self) -> list[RecordedRequest]:
        """Recorded ``POST /backend-api/codex/responses`` calls."""
        return [r for r in self.requests if r.path == "/backend-api/codex/responses"]
