"""Minting and reading the fake's JWTs and opaque ids.

Real OpenAI tokens are RS256 JWTs; codex clients decode them *without* verifying the signature and
require three non-empty dot-separated parts with a base64url payload *without padding*
(codex-protocol.md §4). The fake therefore signs nothing: the signature segment is random bytes.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

ISSUER = "https://auth.openai.com"
"""`iss` of every token, as the real issuer (codex-protocol.md §1)."""

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
"""The Codex CLI OAuth client id (codex-protocol.md §1)."""

AUTH_CLAIM = "https://api.openai.com/auth"
"""Namespace claim holding the ChatGPT identity (codex-protocol.md §4)."""

PROFILE_CLAIM = "https://api.openai.com/profile"

_HEADER = {"alg": "RS256", "typ": "JWT", "kid": "fake"}


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWT segments and PKCE values use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`; tolerates missing padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: dict[str, Any]) -> str:
    """Return a 3-part JWT for ``claims`` with an RS256 header and a random signature segment."""
    header = b64url(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{b64url(secrets.token_bytes(64))}"


def decode_claims(token: str) -> dict[str, Any]:
    """Return the payload of ``token`` without verifying it.

    Raises:
        ValueError: not three non-empty parts, or the payload is not a JSON object.
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError("not a JWT")
    claims = json.loads(b64url_decode(parts[1]))
    if not isinstance(claims, dict):
        raise ValueError("JWT payload is not an object")
    return claims


def random_id(prefix: str, nbytes: int = 12) -> str:
    """An opaque id such as ``resp_…`` or ``msg_…`` (hex, like the real backend's ids)."""
    return f"{prefix}{secrets.token_hex(nbytes)}"


def refresh_token() -> str:
    """A refresh token shaped like the real ones: ``rt_`` + random base64url."""
    return "rt_" + b64url(secrets.token_bytes(48))
