"""Device-code login for headless machines (codex-protocol.md §2).

1. ``POST /api/accounts/deviceauth/usercode`` gives a ``device_auth_id``, a ``user_code`` and a poll
   ``interval`` (a JSON string of seconds); 404 means device login is not enabled.
2. The user opens ``{auth_url}/codex/device`` anywhere and types the code; it expires in 15 minutes.
3. ``POST /api/accounts/deviceauth/token`` is polled: 403/404 = pending; 2xx gives an authorization code
   and its PKCE verifier, exchanged like §1 with ``redirect_uri={auth_url}/deviceauth/callback``.

Time comes in through ``clock`` (epoch seconds) and ``sleep`` so tests neither wait nor race.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import trio

from codexgw.auth.login import LoginError, exchange_code, send
from codexgw.config import command_name
from codexgw.oauth.device import (
    DeviceCode,
    DeviceGrant,
    build_device_token_request,
    build_device_usercode_request,
    device_redirect_uri,
    device_verification_url,
    parse_device_token_response,
    parse_device_usercode_response,
)
from codexgw.oauth.tokens import DeviceCodeError, DeviceLoginNotEnabled, TokenResponse

__all__ = ["DEVICE_CODE_TTL_S", "DevicePrompt", "device_login"]

DEVICE_CODE_TTL_S = 15 * 60.0
"""A user code is valid for 15 minutes (§2)."""
MIN_POLL_INTERVAL_S = 1.0
"""Never poll faster than this, whatever the server's ``interval`` says."""

_EXPIRED_CODES = {"device_auth_expired", "expired_token", "deviceauth_expired", "device_code_expired"}
_DENIED_CODES = {"access_denied", "authorization_declined", "device_auth_denied"}


@dataclass(frozen=True)
class DevicePrompt:
    """What to show the user.

    Attributes:
        verification_url: where to enter the code.
        user_code: the code (not a secret: it only works with our ``device_auth_id``).
        expires_at: epoch seconds when the code stops working.
        interval_s: seconds between polls actually used.
    """

    verification_url: str
    user_code: str
    expires_at: float
    interval_s: float


async def device_login(
    http: httpx.AsyncClient,
    *,
    auth_url: str,
    on_prompt: Callable[[DevicePrompt], None],
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = trio.sleep,
    min_interval_s: float = MIN_POLL_INTERVAL_S,
    ttl_s: float = DEVICE_CODE_TTL_S,
) -> TokenResponse:
    """Run §2 up to the code exchange and return the tokens (the caller stores them).

    Args:
        on_prompt: called once with the URL and code to show.
        clock: epoch seconds (the 15-minute deadline).
        sleep: awaited between polls with the interval in seconds.
        min_interval_s: floor for the server's interval.
        ttl_s: give up this many seconds after the code was issued.

    Raises:
        LoginError: device login not enabled (404), denied, expired, any other error status, an
            unreachable server, or a failed exchange. One line, no token.
    """
    response = await send(http, build_device_usercode_request(auth_url), what="device code request failed")
    try:
        code = parse_device_usercode_response(response.status_code, response.content)
    except DeviceLoginNotEnabled:
        raise LoginError(
            "device code login is not enabled for this account/server (404); "
            f"use `{command_name()} login pkce` instead (with SSH port forwarding or the paste-URL fallback)"
        ) from None
    except DeviceCodeError as exc:
        raise LoginError(exc.message) from None
    interval = max(code.interval_s, min_interval_s)
    expires_at = clock() + ttl_s
    on_prompt(DevicePrompt(device_verification_url(auth_url), code.user_code, expires_at, interval))
    grant = await _poll(
        http, auth_url, code, clock=clock, sleep=sleep, interval_s=interval, expires_at=expires_at
    )
    return await exchange_code(
        http,
        auth_url=auth_url,
        code=grant.authorization_code,
        redirect_uri=device_redirect_uri(auth_url),
        code_verifier=grant.code_verifier,
    )


async def _poll(
    http: httpx.AsyncClient,
    auth_url: str,
    code: DeviceCode,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    interval_s: float,
    expires_at: float,
) -> DeviceGrant:
    expired = LoginError(
        "the device code expired before the sign-in was approved (15 minutes); "
        f"run `{command_name()} login device` again"
    )
    spec = build_device_token_request(auth_url, code)
    while True:
        response = await send(http, spec, what="device login poll failed")
        try:
            grant = parse_device_token_response(response.status_code, response.content)
        except DeviceCodeError as exc:
            if exc.code in _EXPIRED_CODES:
                raise expired from None
            if exc.code in _DENIED_CODES:
                raise LoginError("the sign-in was denied in the browser; nothing was stored") from None
            raise LoginError(exc.message) from None
        if grant is not None:
            return grant
        remaining = expires_at - clock()
        if remaining <= 0:
            raise expired
        await sleep(min(interval_s, remaining))
