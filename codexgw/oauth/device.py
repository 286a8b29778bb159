"""Device-code login messages for auth.openai.com, built and parsed without I/O (codex-protocol.md §2).

The flow: :func:`build_device_usercode_request` → :func:`parse_device_usercode_response` gives a
:class:`DeviceCode` to show; poll :func:`build_device_token_request` →
:func:`parse_device_token_response` every ``interval_s`` until it returns a :class:`DeviceGrant`; then
exchange that grant's code with :func:`codexgw.oauth.tokens.build_code_exchange_request` and
:func:`device_redirect_uri`. Errors are :class:`~codexgw.oauth.tokens.DeviceCodeError` and
:class:`~codexgw.oauth.tokens.DeviceLoginNotEnabled` (all OAuth errors live in
:mod:`codexgw.oauth.tokens`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from codexgw.config import CLIENT_ID
from codexgw.oauth.tokens import (
    JSON_HEADERS,
    DeviceCodeError,
    DeviceLoginNotEnabled,
    HttpRequestSpec,
    error_code,
    error_text,
    load_json,
    str_field,
)

__all__ = [
    "DeviceCode",
    "DeviceGrant",
    "build_device_token_request",
    "build_device_usercode_request",
    "device_redirect_uri",
    "device_verification_url",
    "parse_device_token_response",
    "parse_device_usercode_response",
]


@dataclass(frozen=True)
class DeviceCode:
    """A pending device login (codex-protocol.md §2).

    Attributes:
        device_auth_id: opaque id to poll with.
        user_code: the code the user types at :func:`device_verification_url`.
        interval_s: seconds between polls as the server said (0 when absent; floor it at the edge).
    """

    device_auth_id: str = field(repr=False)
    user_code: str
    interval_s: float


@dataclass(frozen=True)
class DeviceGrant:
    """The poll's success: exchange ``authorization_code`` with ``code_verifier`` and
    :func:`device_redirect_uri` via :func:`build_code_exchange_request` (§2 step 4)."""

    authorization_code: str = field(repr=False)
    code_challenge: str = field(repr=False)
    code_verifier: str = field(repr=False)


def device_verification_url(auth_url: str) -> str:
    """Where the user enters the code: ``{auth_url}/codex/device`` (§2 step 2)."""
    return f"{auth_url.rstrip('/')}/codex/device"


def device_redirect_uri(auth_url: str) -> str:
    """The ``redirect_uri`` of the device flow's code exchange: ``{auth_url}/deviceauth/callback``."""
    return f"{auth_url.rstrip('/')}/deviceauth/callback"


def build_device_usercode_request(auth_url: str) -> HttpRequestSpec:
    """``POST {auth_url}/api/accounts/deviceauth/usercode`` JSON ``{"client_id"}`` (§2 step 1)."""
    return HttpRequestSpec(
        method="POST",
        url=f"{auth_url.rstrip('/')}/api/accounts/deviceauth/usercode",
        headers=dict(JSON_HEADERS),
        json={"client_id": CLIENT_ID},
    )


def _interval(value: object) -> float | None:
    """Seconds from a JSON string (codex-rs) or number; missing → 0; anything else → ``None``."""
    if value is None:
        return 0.0
    if isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_device_usercode_response(status: int, body: bytes) -> DeviceCode:
    """Parse the user-code answer ``{"device_auth_id", "user_code" | "usercode", "interval": "5"}`` (§2).

    ``interval`` is a JSON string in codex-rs; a number is accepted too; missing means 0.

    Raises:
        DeviceLoginNotEnabled: 404.
        DeviceCodeError: other non-2xx, or a malformed body.
    """
    data = load_json(body)
    if status == 404:
        raise DeviceLoginNotEnabled(
            "device code login is not enabled for this server; use the browser login", status=status
        )
    if not 200 <= status < 300:
        raise DeviceCodeError(
            f"device code request failed (HTTP {status}): {error_text(data, body)}",
            status=status,
            code=error_code(data),
        )
    if isinstance(data, dict):
        device_auth_id = str_field(data, "device_auth_id")
        user_code = str_field(data, "user_code") or str_field(data, "usercode")
        interval = _interval(data.get("interval"))
        if device_auth_id and user_code and interval is not None:
            return DeviceCode(device_auth_id=device_auth_id, user_code=user_code, interval_s=interval)
    raise DeviceCodeError("malformed device code response", status=status)


def build_device_token_request(auth_url: str, device_code: DeviceCode) -> HttpRequestSpec:
    """``POST {auth_url}/api/accounts/deviceauth/token`` JSON ``{"device_auth_id", "user_code"}`` (§2)."""
    return HttpRequestSpec(
        method="POST",
        url=f"{auth_url.rstrip('/')}/api/accounts/deviceauth/token",
        headers=dict(JSON_HEADERS),
        json={"device_auth_id": device_code.device_auth_id, "user_code": device_code.user_code},
    )


def parse_device_token_response(status: int, body: bytes) -> DeviceGrant | None:
    """Parse a poll answer (codex-protocol.md §2 step 3).

    Returns:
        ``None`` on 403/404 (still pending: poll again after ``interval_s``); the grant on 2xx.

    Raises:
        DeviceCodeError: any other status, or a 2xx missing a field.
    """
    if status in (403, 404):
        return None
    data = load_json(body)
    if not 200 <= status < 300:
        raise DeviceCodeError(
            f"device login failed (HTTP {status}): {error_text(data, body)}",
            status=status,
            code=error_code(data),
        )
    if isinstance(data, dict):
        code = str_field(data, "authorization_code")
        challenge = str_field(data, "code_challenge")
        verifier = str_field(data, "code_verifier")
        if code and challenge and verifier:
            return DeviceGrant(authorization_code=code, code_challenge=challenge, code_verifier=verifier)
    raise DeviceCodeError("malformed device token response", status=status)
