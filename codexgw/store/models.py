"""Plain data the store hands out: :class:`Account`, :class:`TokenSet`, and :class:`StoreError`.

Secrets (``id_token``, ``access_token``, ``refresh_token``, ``api_key``) are ``field(repr=False)``:
a ``repr``, a log line or a traceback of these objects never shows them. Use
:meth:`Account.to_public_dict` for anything user-facing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codexgw.oauth.jwt import fingerprint
from codexgw.pool.health import eligible

_MAX_NAME_LEN = 64
SECRET_COLUMNS = ("id_token", "access_token", "refresh_token", "api_key")
"""The ``accounts`` columns holding secrets (stored encrypted in an encrypted store)."""

ON_USE_MARGIN_S = 60.0
"""An access token about to be sent upstream must still be valid this long, seconds (the on-use
margin; the background refresh runs earlier, ``Settings.refresh_margin_s`` ahead, 300 s by default)."""
REFRESH_INTERVAL_S = 8 * 24 * 3600
"""Refresh at least this often when the access token's ``exp`` is unreadable (codex-protocol.md §3, 8 days)."""


class StoreError(ValueError):
    """A store operation was refused (name clash, unknown identity, newer schema …).

    The message is one line meant for the user and never contains a token.
    """


class NameTakenError(StoreError):
    """The name is already used by another row (a user, key or account): HTTP 409."""


class UnknownNameError(StoreError):
    """A name given as a reference does not exist (an owner, an account of a key): ``param`` names
    the field it came from."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class TokenSet:
    """Tokens from a login, a refresh or an imported file (codex-protocol.md §5).

    Attributes:
        id_token: raw JWT carrying identity claims (codex-protocol.md §4).
        access_token: bearer token for the Codex backend (usually a JWT with ``exp``).
        refresh_token: single-use refresh token (codex-protocol.md §3).
        account_id: ``tokens.account_id`` from auth.json; used when the id_token lacks
            ``chatgpt_account_id``.
        api_key: ``OPENAI_API_KEY`` from auth.json, if any (kept, unused).
        last_refresh: when the tokens were last obtained, epoch seconds, if known.
    """

    id_token: str = field(repr=False)
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    account_id: str | None = None
    api_key: str | None = field(default=None, repr=False)
    last_refresh: float | None = None


@dataclass(kw_only=True)
class Account:
    """One stored ChatGPT login (a row of ``accounts``; store/migrations.py has the schema).

    Attributes:
        id: store row id (stable for the account's life; never reused).
        name: unique, user-chosen or defaulted from the email's local part.
        chatgpt_account_id: workspace id, sent upstream as ``ChatGPT-Account-ID`` (codex-protocol.md §4).
        email, plan_type, user_id, fedramp: identity claims from the id_token (codex-protocol.md §4).
        id_token, access_token, refresh_token, api_key: secrets, hidden from ``repr``.
        access_expires_at: the access token's ``exp``, epoch seconds, or ``None`` if unreadable.
        last_refresh: when tokens were last obtained, epoch seconds, or ``None`` if unknown.
        enabled: the user's on/off switch (``accounts disable``).
        status: an :class:`~codexgw.pool.health.AccountStatus` value; ``status_reason`` says why.
        created_at, updated_at: epoch seconds.
        weight: relative share for weighted scheduling (1.0 = normal).
        linked_path: an auth.json kept in sync with this account (later feature), or ``None``.
        owner: the user who owns the account (teams, issue 12), or ``None`` (the shared pool).
    """

    id: int
    name: str
    chatgpt_account_id: str
    email: str | None
    plan_type: str | None
    user_id: str | None
    fedramp: bool
    id_token: str = field(repr=False)
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    api_key: str | None = field(default=None, repr=False)
    access_expires_at: float | None
    last_refresh: float | None
    enabled: bool
    status: str
    status_reason: str | None
    created_at: float
    updated_at: float
    weight: float = 1.0
    linked_path: str | None = None
    owner: str | None = None

    @property
    def eligible(self) -> bool:
        """Enabled and ``active``: usable unless cooling down (:func:`codexgw.pool.health.eligible`)."""
        return eligible(self.enabled, self.status)

    def needs_refresh(self, *, now: float, margin_s: float) -> bool:
        """The one rule for "fresh enough": False while the access token stays valid ``margin_s``
        seconds past ``now`` (epoch seconds).

        With ``exp`` known: True when ``access_expires_at - now <= margin_s``. With ``exp`` unreadable:
        True when the last refresh is unknown or :data:`REFRESH_INTERVAL_S` or more ago (the 8-day
        rule of codex-protocol.md §3). Margins in use: :data:`ON_USE_MARGIN_S` before a token is
        used, ``Settings.refresh_margin_s`` for the background refresh.
        """
        if self.access_expires_at is not None:
            return self.access_expires_at - now <= margin_s
        return self.last_refresh is None or now - self.last_refresh >= REFRESH_INTERVAL_S

    def to_public_dict(self) -> dict[str, Any]:
        """Return every non-secret field plus short token fingerprints (``jwt.fingerprint``).

        Shape: ``{"id", "name", "chatgpt_account_id", "email", "plan_type", "user_id", "fedramp",
        "access_expires_at", "last_refresh", "enabled", "status", "status_reason", "weight",
        "linked_path", "owner", "created_at", "updated_at", "fingerprints": {"id_token", "access_token",
        "refresh_token", "api_key"}}``; times in epoch seconds or ``null``, a missing api_key's
        fingerprint is ``null``.
        """
        return {
            "id": self.id,
            "name": self.name,
            "chatgpt_account_id": self.chatgpt_account_id,
            "email": self.email,
            "plan_type": self.plan_type,
            "user_id": self.user_id,
            "fedramp": self.fedramp,
            "access_expires_at": self.access_expires_at,
            "last_refresh": self.last_refresh,
            "enabled": self.enabled,
            "status": self.status,
            "status_reason": self.status_reason,
            "weight": self.weight,
            "linked_path": self.linked_path,
            "owner": self.owner,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "fingerprints": {
                "id_token": fingerprint(self.id_token),
                "access_token": fingerprint(self.access_token),
                "refresh_token": fingerprint(self.refresh_token),
                "api_key": fingerprint(self.api_key) if self.api_key else None,
            },
        }


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid account name (1-64 chars, no control chars, no ``/``, no
    edge spaces): checked when a name is given (an import, a login, a rename), not on load.

    Raises:
        StoreError: otherwise.
    """
    if not name or name != name.strip():
        raise StoreError("account name must be non-empty and not start or end with whitespace")
    if len(name) > _MAX_NAME_LEN:
        raise StoreError(f"account name is longer than {_MAX_NAME_LEN} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise StoreError("account name contains control characters")
    if "/" in name:  # the admin API and the dashboard name an account in a URL path segment
        raise StoreError("account name must not contain '/'; choose another name (e.g. with '-')")
    return name


def default_name(email: str | None) -> str:
    """The email's local part made name-safe (``[A-Za-z0-9._+-]``), or ``"account"``."""
    local = (email or "").split("@", 1)[0].strip()
    cleaned = "".join(c if c.isalnum() or c in "._+-" else "-" for c in local).strip("-")
    return cleaned[: _MAX_NAME_LEN - 4] or "account"


def _as_stored(value: Any, column: str) -> Any:
    return value


def row_to_account(row: Any, open_secret: Callable[[Any, str], Any] = _as_stored) -> Account:
    """Build an :class:`Account` from an ``accounts`` row (a ``sqlite3.Row``).

    Args:
        row: the row.
        open_secret: ``(stored value, "accounts.<column>") → value`` for the secret columns; the
            store passes :meth:`codexgw.store.crypto.Opener.__call__`, which decrypts.

    Raises:
        StoreError: from ``open_secret`` (an encrypted store opened without its key).
    """
    secret = {c: open_secret(row[c], f"accounts.{c}") for c in SECRET_COLUMNS}
    return Account(
        id=row["id"],
        name=row["name"],
        chatgpt_account_id=row["chatgpt_account_id"],
        email=row["email"],
        plan_type=row["plan_type"],
        user_id=row["user_id"],
        fedramp=bool(row["fedramp"]),
        id_token=secret["id_token"],
        access_token=secret["access_token"],
        refresh_token=secret["refresh_token"],
        api_key=secret["api_key"],
        access_expires_at=row["access_expires_at"],
        last_refresh=row["last_refresh"],
        enabled=bool(row["enabled"]),
        status=row["status"],
        status_reason=row["status_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        weight=row["weight"],
        linked_path=row["linked_path"],
        owner=row["owner"],
    )
