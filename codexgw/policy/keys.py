"""API keys: the secret's format, its digest, the stored record, and the lookup (teams contract §1).

* A secret is ``cgw-`` + 43 base64url characters (32 random bytes, 256 bits): :func:`secret_from`
  makes one from bytes the caller drew (``secrets.token_bytes(32)``). Only its SHA-256 digest
  (:func:`key_digest`) and its first 12 characters (:func:`key_prefix`, the visible prefix) are
  stored; a SHA-256 digest suits a high-entropy secret (a slow hash is for passwords, design §6).
* :class:`ApiKey` is a stored key as the policy sees it: no secret, only digests.
* :class:`KeyRing` finds the key a request presents: the candidates with the token's prefix, then
  ``hmac.compare_digest`` over the digests (constant time). A rotated key's previous digest stays
  valid until ``grace_until``. The ``serve --api-key`` secret is one more key (:data:`MASTER_KEY`):
  unscoped, admin, no limits, never stored, compared in constant time.

Authentication (contract §1, §2): with no stored key and no ``--api-key``, every request passes
anonymously (a loopback gateway stays open as before); once either exists, every ``/v1`` request
needs one (401 ``invalid_api_key`` for an unknown, revoked or expired key, or none).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from codexgw.errors import AuthenticationError

__all__ = [
    "MASTER_KEY",
    "PREFIX_LEN",
    "SECRET_PREFIX",
    "ApiKey",
    "KeyRing",
    "key_digest",
    "key_prefix",
    "secret_from",
    "token_of",
]

SECRET_PREFIX = "cgw-"
PREFIX_LEN = 12
"""Characters of the secret shown (``cgw-`` and 8 more, 48 random bits)."""
SECRET_BYTES = 32

KEY_STATUSES = ("active", "expired", "revoked")


def secret_from(random_bytes: bytes) -> str:
    """The secret made of ``random_bytes`` (at least 24 bytes, 192 bits; 32 by default).

    Raises:
        ValueError: fewer than 24 bytes.
    """
    if len(random_bytes) < 24:
        raise ValueError("an API key needs at least 192 random bits")
    return SECRET_PREFIX + base64.urlsafe_b64encode(random_bytes).rstrip(b"=").decode("ascii")


def key_digest(secret: str) -> str:
    """SHA-256 of the whole secret, lower-case hex (what the store keeps)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def key_prefix(secret: str) -> str:
    """The visible prefix: the first :data:`PREFIX_LEN` characters."""
    return secret[:PREFIX_LEN]


def token_of(headers: Mapping[str, str]) -> str:
    """The key a request presents: ``Authorization: Bearer <key>``, else ``x-api-key``, else ``""``.

    ``headers``: lower-case names.
    """
    given = headers.get("authorization", "")
    if given[:7].lower() == "bearer ":
        return given[7:].strip()
    return headers.get("x-api-key", "").strip()


@dataclass(frozen=True)
class ApiKey:
    """A stored API key as the policy sees it (no secret; contract §1 "API key").

    Attributes:
        name: unique; ``-`` is :data:`MASTER_KEY` (``serve --api-key``).
        prefix, digest: the visible prefix and the SHA-256 hex of the secret.
        owner: the owning user's name, or ``None``.
        admin: the key may call the admin API as an admin.
        accounts: account names the key is narrowed to, or ``None`` (no narrowing).
        models: the model allowlist (ids or aliases), or ``None`` (all).
        rpm, tpm, tokens_per_day, max_streams: limits, or ``None`` (no limit).
        expires_at, created_at, revoked_at, last_used_at: epoch s or ``None``.
        reasoning_mode: the default reasoning display in Chat Completions, or ``None``.
        max_effort: the effort ceiling, or ``None``.
        old_prefix, old_digest, grace_until: the secret before the last rotation, valid until
            ``grace_until`` (epoch s).
    """

    name: str
    prefix: str = ""
    digest: str = field(default="", repr=False)
    owner: str | None = None
    admin: bool = False
    accounts: tuple[str, ...] | None = None
    models: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    tokens_per_day: int | None = None
    max_streams: int | None = None
    expires_at: float | None = None
    reasoning_mode: str | None = None
    max_effort: str | None = None
    created_at: float = 0.0
    revoked_at: float | None = None
    last_used_at: float | None = None
    old_prefix: str | None = None
    old_digest: str | None = field(default=None, repr=False)
    grace_until: float | None = None

    @property
    def tenant(self) -> str:
        """Whose stored conversations this key reaches (``previous_response_id``, ``item_reference``):
        ``user:<owner>`` for an owned key (a user's keys share them), else ``key:<name>``."""
        return f"user:{self.owner}" if self.owner is not None else f"key:{self.name}"

    @property
    def limited(self) -> bool:
        """True when the key has any rate limit (rpm, tpm, tokens per day or concurrent streams)."""
        return not (
            self.rpm is None and self.tpm is None and self.tokens_per_day is None and self.max_streams is None
        )

    def status(self, now: float) -> str:
        """``revoked``, ``expired`` (``expires_at <= now``) or ``active``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def public(self, now: float) -> dict[str, Any]:
        """The contract's ``key`` shape (never a secret or digest)."""
        return {
            "name": self.name,
            "prefix": self.prefix,
            "owner": self.owner,
            "admin": self.admin,
            "accounts": list(self.accounts) if self.accounts is not None else None,
            "models": sorted(self.models) if self.models is not None else None,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "tokens_per_day": self.tokens_per_day,
            "max_streams": self.max_streams,
            "expires_at": self.expires_at,
            "reasoning_mode": self.reasoning_mode,
            "max_effort": self.max_effort,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
            "status": self.status(now),
        }


MASTER_KEY = ApiKey(name="-", admin=True)
"""The ``serve --api-key`` key: unscoped, admin, no limits; its usage is counted under ``-``."""

_UNKNOWN = "Invalid API key: send 'Authorization: Bearer <key>' with a key of this gateway"


class KeyRing:
    """The keys a running gateway accepts, indexed by prefix.

    Args:
        keys: the stored keys (revoked and expired ones included: they answer their own 401).
        master: the ``serve --api-key`` secret, or ``None``.
    """

    def __init__(self, keys: Iterable[ApiKey] = (), master: str | None = None) -> None:
        self.keys: dict[str, ApiKey] = {}
        self._by_prefix: dict[str, list[tuple[str, ApiKey, bool]]] = {}
        self._master = master.encode() if master else None
        for key in keys:
            self.keys[key.name] = key
            self._by_prefix.setdefault(key.prefix, []).append((key.digest, key, False))
            if key.old_prefix and key.old_digest and key.grace_until is not None:
                self._by_prefix.setdefault(key.old_prefix, []).append((key.old_digest, key, True))

    @property
    def required(self) -> bool:
        """True when a request must present a key (a stored key or ``--api-key`` exists)."""
        return bool(self.keys) or self._master is not None

    def authenticate(self, token: str, now: float) -> ApiKey | None:
        """The key ``token`` belongs to at ``now``; ``None`` when no key is required and none matched.

        Returns:
            The matching :class:`ApiKey` (:data:`MASTER_KEY` for ``--api-key``); ``None`` only when
            :attr:`required` is False (an open gateway: any token or none passes anonymously).

        Raises:
            AuthenticationError: 401 ``invalid_api_key``: a key is required and ``token`` is none,
                unknown, revoked, expired, or a rotated-away secret past its grace.
        """
        if self._master is not None and hmac.compare_digest(token.encode(), self._master):
            return MASTER_KEY
        candidates = self._by_prefix.get(token[:PREFIX_LEN]) if token.startswith(SECRET_PREFIX) else None
        if candidates:
            digest = key_digest(token)
            for stored, key, old in candidates:
                if hmac.compare_digest(stored, digest):
                    if old and (key.grace_until is None or key.grace_until <= now):
                        raise AuthenticationError("This API key was rotated and its grace period is over")
                    status = key.status(now)
                    if status == "revoked":
                        raise AuthenticationError(f"The API key {key.prefix}… has been revoked")
                    if status == "expired":
                        raise AuthenticationError(f"The API key {key.prefix}… has expired")
                    return key
        if not self.required:
            return None
        raise AuthenticationError(_UNKNOWN)
