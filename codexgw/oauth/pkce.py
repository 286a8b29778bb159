"""Browser login pieces: PKCE values, the authorize URL and the callback query (codex-protocol.md §1).

No I/O: the callback listener (``auth/callback.py``) hands the query string of
``GET /auth/callback?…`` to :func:`parse_callback` and acts on the :class:`CallbackResult`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, quote

from codexgw.config import CLIENT_ID

__all__ = [
    "DEFAULT_SCOPE",
    "LEGACY_SCOPE",
    "REDIRECT_URI",
    "CallbackResult",
    "build_authorize_url",
    "code_challenge_s256",
    "generate_code_verifier",
    "generate_state",
    "parse_callback",
]

REDIRECT_URI = "http://localhost:1455/auth/callback"
"""The redirect registered for the Codex client: host ``localhost`` though the listener binds
127.0.0.1:1455 (§1)."""

DEFAULT_SCOPE = "openid profile email offline_access api.connectors.read api.connectors.invoke"
"""The scope codex-rs asks for since 2026-03-04 (§1)."""

LEGACY_SCOPE = "openid profile email offline_access"
"""The scope older clients and most peers send (§1)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_code_verifier() -> str:
    """64 random bytes, base64url without padding: 86 characters of ``[A-Za-z0-9_-]`` (§1, RFC 7636 §4.1)."""
    return _b64url(secrets.token_bytes(64))


def code_challenge_s256(verifier: str) -> str:
    """``base64url_nopad(SHA-256(verifier))`` (RFC 7636 §4.2, method ``S256``)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def generate_state() -> str:
    """32 random bytes, base64url without padding: 43 characters (§1)."""
    return _b64url(secrets.token_bytes(32))


def build_authorize_url(
    auth_url: str,
    *,
    redirect_uri: str,
    code_challenge: str,
    state: str,
    originator: str = "codex_cli_rs",
    scope: str = DEFAULT_SCOPE,
    allowed_workspace_id: str | None = None,
) -> str:
    """``{auth_url}/oauth/authorize?…`` with the parameters in codex-rs's order (§1): response_type,
    client_id, redirect_uri, scope, code_challenge, code_challenge_method, id_token_add_organizations,
    codex_cli_simplified_flow, state, originator[, allowed_workspace_id]. Every value is percent-encoded
    like ``urlencoding::encode`` (spaces ``%20``, ``:`` and ``/`` escaped)."""
    params = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("code_challenge", code_challenge),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", state),
        ("originator", originator),
    ]
    if allowed_workspace_id is not None:
        params.append(("allowed_workspace_id", allowed_workspace_id))
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in params)
    return f"{auth_url.rstrip('/')}/oauth/authorize?{query}"


@dataclass(frozen=True)
class CallbackResult:
    """What ``GET /auth/callback`` carried (§1 "Callback handling").

    Attributes:
        kind: ``"code"``: exchange ``code``; ``"state_mismatch"``: answer plain-text 400
            ``State mismatch`` and keep waiting; ``"error"``: show :attr:`message` and fail the login.
        code: the authorization code (``kind == "code"`` only).
        error: ``state_mismatch``, ``missing_authorization_code`` or the server's ``error`` value
            (``access_denied`` …).
        error_description: the server's ``error_description``, if any.
    """

    kind: Literal["code", "state_mismatch", "error"]
    code: str | None = field(default=None, repr=False)
    error: str | None = None
    error_description: str | None = None

    @property
    def message(self) -> str | None:
        """Human text for the error page, ``None`` for ``kind == "code"``."""
        if self.kind == "code":
            return None
        if self.kind == "state_mismatch":
            return "State mismatch"
        if self.error == "missing_authorization_code":
            return "Missing authorization code. Sign-in could not be completed."
        if self.error == "access_denied" and "missing_codex_entitlement" in (self.error_description or ""):
            return "Codex is not enabled for your workspace. Contact your workspace administrator."
        detail = f": {self.error_description}" if self.error_description else ""
        return f"Sign-in failed ({self.error}){detail}"


def parse_callback(query: str, expected_state: str) -> CallbackResult:
    """Classify the callback query string (with or without a leading ``?``), checking in §1's order:
    ``state`` must equal ``expected_state`` (constant-time compare), then ``error``, then ``code``."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query.removeprefix("?"), keep_blank_values=True):
        params.setdefault(key, value)
    state = params.get("state", "")
    if not expected_state or not hmac.compare_digest(state.encode(), expected_state.encode()):
        return CallbackResult(kind="state_mismatch", error="state_mismatch")
    if "error" in params:
        return CallbackResult(
            kind="error",
            error=params["error"] or "unknown_error",
            error_description=params.get("error_description") or None,
        )
    code = params.get("code")
    if not code:
        return CallbackResult(kind="error", error="missing_authorization_code")
    return CallbackResult(kind="code", code=code)
