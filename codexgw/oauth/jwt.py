"""JWT claims codexgw reads from ChatGPT OAuth tokens (sans-IO; codex-protocol.md §4).

Tokens are decoded **without signature verification**, exactly like codex-rs: the issuer already
vouched for them when it handed them to us, and we only read identity and expiry hints. A token is
``header.payload.signature`` with three non-empty parts; the payload is base64url JSON (codex-rs
requires no padding; we accept both). Nothing here ever puts a token into an error message or a
``repr``: use :func:`fingerprint` wherever a token would otherwise be shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

AUTH_CLAIM = "https://api.openai.com/auth"
"""Namespace object holding ChatGPT account claims (codex-protocol.md §4)."""

PROFILE_CLAIM = "https://api.openai.com/profile"
"""Namespace object holding the fallback ``email`` claim (codex-protocol.md §4)."""

_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class InvalidJWTError(ValueError):
    """The string is not a decodable JWT. The message never contains the token."""


def decode_jwt_payload(token: str) -> dict[str, Any]:
    """Return the JSON payload of ``token`` without verifying its signature (codex-protocol.md §4).

    Args:
        token: a compact JWT, ``header.payload.signature``.

    Returns:
        The payload as a dict (a JSON object).

    Raises:
        InvalidJWTError: not a string of three non-empty dot-separated parts, payload not base64url,
            not UTF-8 JSON, or not a JSON object. The message describes the problem, never the token.
    """
    if not isinstance(token, str):
        raise InvalidJWTError("JWT is not a string")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidJWTError("JWT must have three non-empty dot-separated parts")
    payload = parts[1]
    if not _B64URL.fullmatch(payload):
        raise InvalidJWTError("JWT payload is not valid base64url")
    payload = payload.rstrip("=")
    payload += "=" * (-len(payload) % 4)
    try:
        raw = base64.urlsafe_b64decode(payload.encode("ascii"))
    except (binascii.Error, ValueError):
        raise InvalidJWTError("JWT payload is not valid base64url") from None
    try:
        claims = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidJWTError("JWT payload is not valid JSON") from None
    if not isinstance(claims, dict):
        raise InvalidJWTError("JWT payload is not a JSON object")
    return claims


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _auth_claims(claims: dict[str, Any]) -> dict[str, Any]:
    auth = claims.get(AUTH_CLAIM)
    return auth if isinstance(auth, dict) else {}


@dataclass(frozen=True)
class IdentityClaims:
    """Identity read from an id_token (codex-protocol.md §4).

    Attributes:
        email: top-level ``email``, else ``https://api.openai.com/profile``.``email``.
        plan_type: ``chatgpt_plan_type`` (``"free"``, ``"plus"``, ``"pro"``, ``"team"`` …), as sent.
        chatgpt_account_id: the workspace id, sent upstream as ``ChatGPT-Account-ID``.
        chatgpt_user_id: ``chatgpt_user_id``, else ``user_id``.
        fedramp: ``chatgpt_account_is_fedramp`` is true (requests add ``X-OpenAI-Fedramp: true``).
        organization_id: ``organization_id`` (informational).
    """

    email: str | None
    plan_type: str | None
    chatgpt_account_id: str | None
    chatgpt_user_id: str | None
    fedramp: bool
    organization_id: str | None


def identity_from_claims(claims: dict[str, Any]) -> IdentityClaims:
    """Build :class:`IdentityClaims` from an already-decoded id_token payload."""
    auth = _auth_claims(claims)
    email = _str_or_none(claims.get("email"))
    if email is None:
        profile = claims.get(PROFILE_CLAIM)
        if isinstance(profile, dict):
            email = _str_or_none(profile.get("email"))
    return IdentityClaims(
        email=email,
        plan_type=_str_or_none(auth.get("chatgpt_plan_type")),
        chatgpt_account_id=_str_or_none(auth.get("chatgpt_account_id")),
        chatgpt_user_id=_str_or_none(auth.get("chatgpt_user_id")) or _str_or_none(auth.get("user_id")),
        fedramp=auth.get("chatgpt_account_is_fedramp") is True,
        organization_id=_str_or_none(auth.get("organization_id")),
    )


def identity_from_id_token(id_token: str) -> IdentityClaims:
    """Decode ``id_token`` and return its identity claims (codex-protocol.md §4).

    Raises:
        InvalidJWTError: ``id_token`` is not a decodable JWT.
    """
    return identity_from_claims(decode_jwt_payload(id_token))


def access_token_expiry(access_token: str) -> float | None:
    """Return the access token's ``exp`` (epoch seconds), or ``None`` if not a JWT or no numeric exp.

    codex-rs refreshes when ``exp <= now`` (codex-protocol.md §3); codexgw adds a margin.
    """
    try:
        claims = decode_jwt_payload(access_token)
    except InvalidJWTError:
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def plan_type_from_access_token(access_token: str) -> str | None:
    """Return ``https://api.openai.com/auth``.``chatgpt_plan_type`` of an access token, or ``None``."""
    try:
        claims = decode_jwt_payload(access_token)
    except InvalidJWTError:
        return None
    return _str_or_none(_auth_claims(claims).get("chatgpt_plan_type"))


def fingerprint(secret: str) -> str:
    """Return a short, non-reversible tag for ``secret``: the first 8 hex digits of its SHA-256.

    Safe to display or log in place of a token; equal tokens give equal fingerprints.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]
