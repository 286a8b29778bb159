"""Account health: which upstream refusals say something about the *account* (sans-IO).

An account's stored ``status`` is ``active`` or one of the states below; anything but ``active``
takes it out of rotation until a new login or a successful refresh (``Store.save_tokens`` sets it
back to ``active``). :func:`codexgw.pool.failover.decide` calls :func:`health_verdict` on a refused
answer and turns the verdict into a decision (mark the status, or cool down); the shell in
``upstream/failover.py`` carries it out (``Gateway.set_health``, ``Pool.cool_down``).

=========================  =============================================  ===========================
upstream answer            verdict                                        source
=========================  =============================================  ===========================
401 after a refresh        ``needs_login``                                codex-protocol.md §8.3
403, body says deactivated ``suspended``                                  §3 (``account_deactivated``)
403 Cloudflare HTML page   short backoff (``CLOUDFLARE_BACKOFF_S``),      §8.3 (retried, not a ban)
                           not a status change
429/403 or failed stream   ``plan_unsupported``                           §8.2, §8.3
``usage_not_included``
=========================  =============================================  ===========================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "CLOUDFLARE_BACKOFF_S",
    "SERVING",
    "AccountStatus",
    "Verdict",
    "eligible",
    "health_verdict",
    "spent_refresh_status",
]


class AccountStatus(StrEnum):
    """An account's stored ``status`` (the one vocabulary; the store, the pool and the CLI use it).

    ``active`` serves (and ``login_expiring``, until its access token expires); every other value
    takes the account out of rotation until a new login or a successful refresh
    (``Store.save_tokens`` sets it back to ``active``).
    """

    ACTIVE = "active"
    NEEDS_LOGIN = "needs_login"
    """A permanent refresh failure or a 401 after a refresh (codex-protocol.md §3, §8.3)."""
    SUSPENDED = "suspended"
    """The backend says the account is deactivated."""
    PLAN_UNSUPPORTED = "plan_unsupported"
    """The plan does not include Codex (``usage_not_included``, §8.2)."""
    LOGIN_EXPIRING = "login_expiring"
    """The refresh token is spent (``refresh_token_reused``: a refresh cut short, e.g. by a crash)
    but the access token is still valid: the account serves until that token expires, then
    becomes ``needs_login`` (:func:`spent_refresh_status`). The one non-``active`` status that serves."""


SERVING = frozenset({AccountStatus.ACTIVE, AccountStatus.LOGIN_EXPIRING})
"""The statuses that may serve."""


def eligible(enabled: bool, status: str) -> bool:
    """The one rule for "may serve, unless cooling down": enabled and ``active`` (or
    ``login_expiring``, serving on its last access token)."""
    return enabled and status in SERVING


def spent_refresh_status(
    code: str | None, *, access_expires_at: float | None, now: float, token_refused: bool = False
) -> AccountStatus:
    """The status after the OAuth server refused a refresh for good (codex-protocol.md §3).

    ``refresh_token_reused`` means the refresh token was spent, most likely by a refresh whose
    answer was lost (a process killed mid-refresh): the access token issued before it stays valid
    until its ``exp``. While it does (``access_expires_at`` after ``now``, epoch s) and the backend
    has not refused it (``token_refused``: a 401 on it), the account is ``login_expiring`` and keeps
    serving; any other refusal, or once the token expired, ``needs_login``.
    """
    alive = access_expires_at is not None and access_expires_at > now and not token_refused
    if code == "refresh_token_reused" and alive:
        return AccountStatus.LOGIN_EXPIRING
    return AccountStatus.NEEDS_LOGIN


CLOUDFLARE_BACKOFF_S = 60.0
"""Cooldown after a Cloudflare challenge page, seconds: a transient block, not a ban."""


@dataclass(frozen=True)
class Verdict:
    """What a refusal means for the account.

    Attributes:
        status: the new stored status (:class:`AccountStatus`), or ``None`` for a backoff only.
        reason: one human line for logs, ``/status`` and ``accounts list`` (no secrets).
        backoff_s: cool the account down this long (seconds, not quota-related), or ``None``.
    """

    status: AccountStatus | None
    reason: str
    backoff_s: float | None = None


def _error_fields(body: Any) -> tuple[str, str]:
    """``(code-ish text, message text)`` of an error body, lower-cased, for keyword checks."""
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    detail = body.get("detail")
    codes: list[str] = []
    messages: list[str] = []
    for obj in (error, detail, body):
        if isinstance(obj, dict):
            codes += [str(obj[k]) for k in ("code", "type") if isinstance(obj.get(k), str)]
            messages += [str(obj[k]) for k in ("message", "detail") if isinstance(obj.get(k), str)]
        elif isinstance(obj, str):
            messages.append(obj)
    return " ".join(codes).lower(), " ".join(messages).lower()


def health_verdict(status: int, content: bytes, body: Any, *, refreshed: bool = False) -> Verdict | None:
    """Classify a non-2xx answer (or a failed stream's error) by what it says about the account.

    Args:
        status: the upstream HTTP status (429 for a ``response.failed`` usage error).
        content: the raw body (an HTML page has no JSON ``body``); may be empty.
        body: the parsed JSON body, or ``None``.
        refreshed: the token was already refreshed for this request (a 401 then means the login is
            gone, not just an expired token).

    Returns:
        A :class:`Verdict`, or ``None`` when the answer says nothing about the account's health
        (the failover table's other rows apply). Never raises.
    """
    codes, message = _error_fields(body)
    if "usage_not_included" in codes and status in (403, 429):
        return Verdict(
            AccountStatus.PLAN_UNSUPPORTED, "the account's plan does not include Codex (usage_not_included)"
        )
    if status == 401:
        if refreshed:
            return Verdict(
                AccountStatus.NEEDS_LOGIN,
                "the Codex backend refused the token even after a refresh (HTTP 401)",
            )
        return None
    if status != 403:
        return None
    if "deactivated" in codes or "deactivated" in message:
        return Verdict(
            AccountStatus.SUSPENDED, "the Codex backend says the account is deactivated (HTTP 403)"
        )
    text = bytes(content[:65536]).decode("utf-8", "replace").lower()
    if "cloudflare" in text and ("<html" in text or "<!doctype" in text):
        return Verdict(
            None, "the Codex backend answered a Cloudflare challenge (HTTP 403)", CLOUDFLARE_BACKOFF_S
        )
    return None
