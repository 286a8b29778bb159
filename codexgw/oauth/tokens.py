"""OAuth messages for auth.openai.com, built and parsed without I/O (codex-protocol.md §1-§3).

Each exchange is a ``build_*_request`` that returns an :class:`HttpRequestSpec` (the edge sends it
with httpx and adds its own ``originator``/``User-Agent`` where §3 says Codex does) and a
``parse_*_response(status, body)`` that turns the answer into values or raises. Here: refresh (§3),
code exchange and API-key exchange (§1), revoke (§3); the device-code messages (§2) are in
:mod:`codexgw.oauth.device`, which shares this module's errors and body helpers.

Errors::

    OAuthError                  status, code, message (never a token, never more than a short excerpt)
    ├── RefreshError            ``permanent``: log in again (True) or retry later (False)     §3
    ├── TokenExchangeError      code → tokens failed                                           §1
    └── DeviceCodeError         device-code request or poll failed                             §2
        └── DeviceLoginNotEnabled   404 on the user-code request

Messages are built from error codes and a redacted excerpt (:func:`safe_excerpt`): long token-like
runs are replaced, so a body that echoes a token does not leak it into logs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from codexgw.config import CLIENT_ID

__all__ = [
    "PERMANENT_REFRESH_CODES",
    "DeviceCodeError",
    "DeviceLoginNotEnabled",
    "HttpRequestSpec",
    "OAuthError",
    "RefreshError",
    "TokenExchangeError",
    "TokenResponse",
    "build_api_key_exchange_request",
    "build_code_exchange_request",
    "build_refresh_request",
    "build_revoke_request",
    "error_code",
    "error_text",
    "load_json",
    "parse_api_key_exchange_response",
    "parse_code_exchange_response",
    "parse_refresh_response",
    "safe_excerpt",
    "str_field",
]

JSON_HEADERS = {"Content-Type": "application/json"}
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class HttpRequestSpec:
    """A request for the edge to send.

    Attributes:
        method: ``"POST"``.
        url: absolute URL.
        headers: at least ``Content-Type``.
        json: JSON body (key order is the wire order), or ``None``.
        form: form fields in wire order, or ``None`` (send with :meth:`body_bytes` or httpx ``data=``).
    """

    method: str
    url: str
    headers: dict[str, str]
    json: dict[str, Any] | None = field(default=None, repr=False)
    form: dict[str, str] | None = field(default=None, repr=False)

    def body_bytes(self) -> bytes:
        """The encoded body: compact JSON, or ``k=v&…`` with every value percent-encoded as
        ``urlencoding::encode`` does (only ``A-Z a-z 0-9 - _ . ~`` stay literal; codex-protocol.md §1)."""
        if self.json is not None:
            return json.dumps(self.json, separators=(",", ":")).encode()
        if self.form is not None:
            return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.form.items()).encode()
        return b""


@dataclass(frozen=True)
class TokenResponse:
    """Tokens from ``/oauth/token``; each ``None`` when the answer left it out (refresh, §3)."""

    id_token: str | None = field(repr=False)
    access_token: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)

    def __repr__(self) -> str:
        present = [n for n in ("id_token", "access_token", "refresh_token") if getattr(self, n)]
        return f"TokenResponse(<{', '.join(present) or 'no tokens'}>)"


class OAuthError(Exception):
    """An auth.openai.com exchange failed.

    Attributes:
        status: the HTTP status (0 when not from a response).
        code: the error code the server gave, if any (``refresh_token_reused`` …).
        message: human text, safe to log and show.
    """

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class RefreshError(OAuthError):
    """Token refresh failed (codex-protocol.md §3).

    Attributes:
        permanent: True means the refresh token is dead: mark the account ``needs_login`` and never
            retry; False means try again later.
    """

    def __init__(self, message: str, *, status: int, code: str | None = None, permanent: bool) -> None:
        super().__init__(message, status=status, code=code)
        self.permanent = permanent


class TokenExchangeError(OAuthError):
    """The authorization-code exchange failed (codex-protocol.md §1)."""


class DeviceCodeError(OAuthError):
    """A device-code request or poll failed (codex-protocol.md §2)."""


class DeviceLoginNotEnabled(DeviceCodeError):
    """404 on the user-code request: device-code login is not enabled for this server (§2)."""


# ---------------------------------------------------------------------------------------------- helpers
# The body helpers (load_json, str_field, error_code, error_text) are shared with oauth/device.py.

_TOKENISH = re.compile(r"[A-Za-z0-9_\-.~+/=]{24,}")
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]{0,63}$")
EXCERPT_CHARS = 160


def _looks_secret(run: str) -> bool:
    """A 24+ character run with a digit or a capital: a token, not a snake_case error code."""
    return len(run) >= 24 and any(c.isdigit() or c.isupper() for c in run)


def safe_excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, token-like runs (24+ token characters with a digit or capital) replaced
    by ``[redacted]``, cut to ``limit`` characters."""
    text = _TOKENISH.sub(
        lambda m: "[redacted]" if _looks_secret(m.group()) else m.group(), " ".join(text.split())
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_json(body: bytes) -> object:
    """The JSON value of ``body``, or ``None`` when it is not JSON (or not UTF-8)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def str_field(obj: dict[str, Any], key: str) -> str | None:
    """``obj[key]`` when it is a non-empty string, else ``None``."""
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def _clean_code(value: object) -> str | None:
    """An error code as given, or ``None`` when it is not code-shaped or could be a token."""
    if isinstance(value, str) and _CODE.match(value) and not _looks_secret(value):
        return value
    return None


def error_code(data: object) -> str | None:
    """§3's order: ``error.code``, else ``error`` when a string, else top-level ``code``."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and _clean_code(error.get("code")):
        return _clean_code(error.get("code"))
    if _clean_code(error):
        return _clean_code(error)
    return _clean_code(data.get("code"))


def error_text(data: object, body: bytes) -> str:
    """§1's order: ``error_description``, ``error.message``, ``error`` string / ``error.code``, raw text.
    Redacted and cut (:func:`safe_excerpt`)."""
    if isinstance(data, dict):
        error = data.get("error")
        candidates: list[object] = [data.get("error_description")]
        if isinstance(error, dict):
            candidates += [error.get("message"), error.get("code")]
        else:
            candidates.append(error)
        for candidate in candidates:
            if isinstance(candidate, str) and candidate.strip():
                return safe_excerpt(candidate)
    raw = body.decode("utf-8", "replace").strip()
    if raw.startswith("<"):
        return f"(HTML body, {len(body)} bytes)"
    return safe_excerpt(raw) if raw else "(empty body)"


def _tokens(data: object) -> TokenResponse | None:
    if not isinstance(data, dict):
        return None
    return TokenResponse(
        id_token=str_field(data, "id_token"),
        access_token=str_field(data, "access_token"),
        refresh_token=str_field(data, "refresh_token"),
    )


# ------------------------------------------------------------------------------------ refresh §3

PERMANENT_REFRESH_CODES: dict[str, str] = {
    "refresh_token_expired": "the refresh token has expired; log in again",
    "refresh_token_reused": "the refresh token was already used; log in again",
    "refresh_token_invalidated": "the refresh token was revoked; log in again",
    "invalid_grant": "the refresh token was rejected (invalid_grant); log in again",
    "token_invalidated": "the login was invalidated; log in again",
    "token_expired": "the login has expired; log in again",
    "app_session_terminated": "the login session was ended (signed out elsewhere?); log in again",
    "account_session_expired": "the account session has expired; log in again",
    "account_deactivated": "the ChatGPT account is deactivated",
}
"""Codes that mean the refresh token is dead whatever the status, with their messages (§3: the three
codex-rs codes plus the peers' list)."""


def build_refresh_request(auth_url: str, refresh_token: str) -> HttpRequestSpec:
    """``POST {auth_url}/oauth/token`` with JSON ``{"client_id", "grant_type": "refresh_token",
    "refresh_token"}`` and no ``scope``, exactly as codex-rs sends it (codex-protocol.md §3)."""
    return HttpRequestSpec(
        method="POST",
        url=f"{auth_url.rstrip('/')}/oauth/token",
        headers=dict(JSON_HEADERS),
        json={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def parse_refresh_response(status: int, body: bytes) -> TokenResponse:
    """Parse a refresh answer (codex-protocol.md §3).

    Returns:
        The tokens on 2xx; ``access_token`` is set, the others may be ``None`` (keep the old ones).

    Raises:
        RefreshError: ``permanent=True`` for 401 and for any status carrying a code in
            :data:`PERMANENT_REFRESH_CODES`; ``permanent=False`` for other non-2xx and for a 2xx whose
            body is not JSON or has no ``access_token`` ("malformed token response").
    """
    data = load_json(body)
    if 200 <= status < 300:
        tokens = _tokens(data)
        if tokens is None or tokens.access_token is None:
            raise RefreshError("malformed token response", status=status, permanent=False)
        return tokens
    code = error_code(data)
    known = PERMANENT_REFRESH_CODES.get(code.lower()) if code else None
    if known is not None:
        raise RefreshError(known, status=status, code=code, permanent=True)
    detail = error_text(data, body)
    if status == 401:
        raise RefreshError(
            f"the refresh token was rejected (HTTP 401: {detail}); log in again",
            status=status,
            code=code,
            permanent=True,
        )
    message = f"token refresh failed (HTTP {status}: {detail}); will retry"
    raise RefreshError(message, status=status, code=code, permanent=False)


# ------------------------------------------------------------------------------------ code exchange §1


def build_code_exchange_request(
    auth_url: str, *, code: str, redirect_uri: str, code_verifier: str
) -> HttpRequestSpec:
    """``POST {auth_url}/oauth/token``, form fields in §1's order: ``grant_type=authorization_code``,
    ``code``, ``redirect_uri``, ``client_id``, ``code_verifier`` (codex-protocol.md §1, §2 step 4)."""
    return HttpRequestSpec(
        method="POST",
        url=f"{auth_url.rstrip('/')}/oauth/token",
        headers=dict(FORM_HEADERS),
        form={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": code_verifier,
        },
    )


def parse_code_exchange_response(status: int, body: bytes) -> TokenResponse:
    """Parse the code-exchange answer (codex-protocol.md §1).

    Returns:
        All three tokens (each a non-empty string).

    Raises:
        TokenExchangeError: non-2xx (message from ``error_description``, ``error.message``, ``error`` /
            ``error.code``, raw text, in that order), or a 2xx missing any token.
    """
    data = load_json(body)
    if not 200 <= status < 300:
        raise TokenExchangeError(
            f"token exchange failed (HTTP {status}): {error_text(data, body)}",
            status=status,
            code=error_code(data),
        )
    tokens = _tokens(data)
    if tokens is None or not (tokens.id_token and tokens.access_token and tokens.refresh_token):
        raise TokenExchangeError(
            "malformed token response: id_token, access_token and refresh_token are required", status=status
        )
    return tokens


def build_api_key_exchange_request(auth_url: str, id_token: str) -> HttpRequestSpec:
    """The optional id_token → API-key token exchange (codex-protocol.md §1), form fields in order:
    ``grant_type``, ``client_id``, ``requested_token=openai-api-key``, ``subject_token``,
    ``subject_token_type``."""
    return HttpRequestSpec(
        method="POST",
        url=f"{auth_url.rstrip('/')}/oauth/token",
        headers=dict(FORM_HEADERS),
        form={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_id": CLIENT_ID,
            "requested_token": "openai-api-key",
            "subject_token": id_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        },
    )


def parse_api_key_exchange_response(status: int, body: bytes) -> str | None:
    """The API key (``access_token``) from a 2xx, else ``None``: the exchange is best effort (§1)."""
    if not 200 <= status < 300:
        return None
    data = load_json(body)
    return str_field(data, "access_token") if isinstance(data, dict) else None


def build_revoke_request(
    auth_url: str, *, refresh_token: str | None = None, access_token: str | None = None
) -> HttpRequestSpec:
    """``POST {auth_url}/oauth/revoke`` (codex-protocol.md §3): JSON ``{"token", "token_type_hint":
    "refresh_token", "client_id"}``, or, with no refresh token, ``{"token", "token_type_hint":
    "access_token"}`` (no client_id). Failures should be ignored by the caller.

    Raises:
        ValueError: neither token given.
    """
    url = f"{auth_url.rstrip('/')}/oauth/revoke"
    if refresh_token:
        payload = {"token": refresh_token, "token_type_hint": "refresh_token", "client_id": CLIENT_ID}
    elif access_token:
        payload = {"token": access_token, "token_type_hint": "access_token"}
    else:
        raise ValueError("nothing to revoke: give refresh_token or access_token")
    return HttpRequestSpec(method="POST", url=url, headers=dict(JSON_HEADERS), json=payload)
