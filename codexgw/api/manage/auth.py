"""Who calls the admin API: sessions, admin keys, CSRF, the first admin's setup (teams contract §4).

* ``POST /api/session`` ``{"user", "password"}``: checks the password (scrypt, in a worker thread)
  and sets the ``codexgw_session`` cookie (HttpOnly, SameSite=Strict, Path=/, Secure under TLS;
  :data:`SESSION_TTL_S`). The store keeps the SHA-256 digest of the cookie's value only. Failed
  attempts are throttled per user name and per address (429 with ``Retry-After``).
* ``GET /api/session``: the current session; ``DELETE /api/session``: ends it (204).
* ``POST /api/setup`` ``{"token", "user", "password"}``: the first admin, with the one-time token
  ``serve`` printed (15 minutes, only while no user exists); then as ``POST /api/session``.

:func:`principal` authenticates every other ``/api`` request: an admin API key (``Authorization:
Bearer`` or ``x-api-key``; a stored key with ``admin``, or ``serve --api-key``), else the session
cookie. A state-changing request with a cookie needs ``x-csrf-token`` (the ``csrf_token`` the
session answers carry: an HMAC of the cookie's value, so it needs no storage), else 403
``csrf_failed``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import trio
from quart import Blueprint, Response, request

from codexgw.api.body import parse_json_text
from codexgw.api.common import gateway, json_response
from codexgw.errors import ForbiddenError, InvalidRequestError, RateLimitError, UnauthenticatedError
from codexgw.policy.access import Principal
from codexgw.policy.fields import FieldError, check_name
from codexgw.policy.keys import MASTER_KEY, token_of
from codexgw.policy.passwords import verify_password

__all__ = ["COOKIE", "CSRF_HEADER", "SESSION_TTL_S", "bp", "json_body", "principal"]

bp = Blueprint("manage_auth", __name__)

COOKIE = "codexgw_session"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 12 * 3600.0
"""A session lasts this long after signing in, seconds."""
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DUMMY_HASH = "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
"""Verified against when the user does not exist, so the answer takes as long either way."""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_token(cookie: str) -> str:
    """The CSRF token of the session whose cookie value is ``cookie``."""
    return hmac.new(cookie.encode(), b"codexgw csrf", hashlib.sha256).hexdigest()[:32]


async def json_body() -> dict[str, Any]:
    """The request's JSON object (``{}`` when empty).

    Raises:
        InvalidRequestError: the body is not a JSON object.
    """
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        return {}
    try:
        data = parse_json_text(raw, what="the body")
    except InvalidRequestError as exc:
        if exc.code is not None:  # a shape limit: say which
            raise
        data = None
    if not isinstance(data, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return data


async def principal() -> Principal:
    """The caller of the current ``/api`` request (see the module docstring).

    Raises:
        UnauthenticatedError: 401, no admin key and no valid session.
        AuthenticationError: 401 ``invalid_api_key``, a key that is unknown, revoked or expired.
        ForbiddenError: 403, a key that is not an admin key, or ``csrf_failed``.
    """
    from codexgw.store.users import session_user

    gw = gateway()
    headers = {k.lower(): v for k, v in request.headers.items()}
    token = token_of(headers)
    if token:
        key = gw.teams.ring.authenticate(token, gw.clock())
        if key is not None:
            if not key.admin:
                raise ForbiddenError("this API key is not an admin key; sign in or use an admin key")
            if key is MASTER_KEY:
                return Principal("--api-key", "admin", via="master")
            return Principal(key.owner or key.name, "admin", via="key", key=key.name)
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise UnauthenticatedError("sign in first (POST /api/session) or send an admin API key")
    found = await trio.to_thread.run_sync(lambda: session_user(gw.store, _digest(cookie), now=gw.clock()))
    if found is None:
        raise UnauthenticatedError("the session has ended; sign in again")
    user, _expires_at = found
    if request.method in UNSAFE and not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, "").encode(), csrf_token(cookie).encode()
    ):
        raise ForbiddenError(f"a change needs the session's CSRF token in {CSRF_HEADER}", code="csrf_failed")
    return Principal(user.name, user.role)


def _client_address() -> str:
    return str(request.remote_addr or "-")


def _throttled(user: str) -> None:
    gw = gateway()
    wait = gw.teams.login_throttle.retry_after(user, _client_address(), gw.clock())
    if wait is not None:
        raise RateLimitError(
            f"too many failed sign-ins; try again in {max(1, round(wait))}s",
            kind="requests",
            retry_after_s=wait,
        )


def _failed(user: str) -> None:
    gw = gateway()
    gw.teams.login_throttle.failed(user, _client_address(), gw.clock())


async def _open_session(name: str, role: str) -> Response:
    """Store a new session for ``name`` and answer with its cookie."""
    import secrets

    from codexgw.store.users import create_session

    gw = gateway()
    cookie = secrets.token_urlsafe(32)
    now = gw.clock()
    expires_at = now + SESSION_TTL_S
    address = _client_address()
    await trio.to_thread.run_sync(
        lambda: create_session(
            gw.store, _digest(cookie), name, now=now, expires_at=expires_at, address=address
        )
    )
    response = json_response(_session_shape(name, role, cookie, expires_at))
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(SESSION_TTL_S),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=bool(gw.settings.certfile),
    )
    return response


def _session_shape(name: str, role: str, cookie: str, expires_at: float) -> dict[str, Any]:
    return {"user": {"name": name, "role": role}, "csrf_token": csrf_token(cookie), "expires_at": expires_at}


@bp.post("/api/session")
async def sign_in() -> Response:
    """Sign in with ``{"user", "password"}``: the session cookie and its CSRF token."""
    from codexgw.store.audit import Audit, record
    from codexgw.store.users import get_user

    gw = gateway()
    body = await json_body()
    name, password = body.get("user"), body.get("password")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("user is required", param="user")
    if not isinstance(password, str):
        raise InvalidRequestError("password is required", param="password")
    _throttled(name)
    user = await trio.to_thread.run_sync(lambda: get_user(gw.store, name))
    stored = user.password if user is not None else _DUMMY_HASH
    ok = await trio.to_thread.run_sync(lambda: verify_password(password, stored))
    if user is None or not ok:
        _failed(name)
        raise UnauthenticatedError("wrong user name or password")
    gw.teams.login_throttle.succeeded(name)
    audit = Audit(user.name, "session.create", user.name, {"address": _client_address()})
    await trio.to_thread.run_sync(lambda: record(gw.store, audit, now=gw.clock()))
    return await _open_session(user.name, user.role)


@bp.get("/api/session")
async def current_session() -> Response:
    """The current session: ``{"user": {"name", "role"}, "csrf_token", "expires_at"}`` (401 if none)."""
    from codexgw.store.users import session_user

    gw = gateway()
    cookie = request.cookies.get(COOKIE)
    found = None
    if cookie:
        found = await trio.to_thread.run_sync(lambda: session_user(gw.store, _digest(cookie), now=gw.clock()))
    if found is None or cookie is None:
        raise UnauthenticatedError("no session; sign in with POST /api/session")
    user, expires_at = found
    return json_response(_session_shape(user.name, user.role, cookie, expires_at))


@bp.delete("/api/session")
async def sign_out() -> Response:
    """End the current session (204; the cookie is cleared)."""
    from codexgw.store.users import delete_session

    gw = gateway()
    await principal()  # a session (with its CSRF token) or an admin key
    cookie = request.cookies.get(COOKIE)
    if cookie:
        await trio.to_thread.run_sync(lambda: delete_session(gw.store, _digest(cookie)))
    response = Response("", status=204)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="Strict", secure=bool(gw.settings.certfile)
    )
    return response


@bp.post("/api/setup")
async def setup() -> Response:
    """Create the first admin with ``{"token", "user", "password"}`` (the token ``serve`` printed)."""
    from codexgw.store import StoreError
    from codexgw.store.audit import Audit
    from codexgw.store.users import add_user, new_password_hash

    gw = gateway()
    body = await json_body()
    _throttled("-setup-")
    if not gw.teams.check_setup_token(str(body.get("token", ""))):
        _failed("-setup-")
        raise UnauthenticatedError("the setup token is wrong, spent or expired (restart serve for a new one)")
    try:
        name = check_name(body.get("user"), param="user", what="the user name")
    except FieldError as exc:
        raise InvalidRequestError(str(exc), param=exc.param) from None
    password = body.get("password")
    try:
        hashed = await trio.to_thread.run_sync(lambda: new_password_hash(str(password or "")))
    except StoreError as exc:
        raise InvalidRequestError(str(exc), param="password") from None
    audit = Audit(name, "setup", name, {"role": "admin"})
    try:
        await trio.to_thread.run_sync(
            lambda: add_user(gw.store, name, "admin", hashed, now=gw.clock(), audit=audit, only_if_none=True)
        )
    except StoreError as exc:
        from codexgw.errors import ConflictError

        raise ConflictError(str(exc)) from None
    gw.teams.setup_done()
    await gw.account_state.reload()
    return await _open_session(name, "admin")
