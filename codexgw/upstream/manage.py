"""The admin API's operations on keys, users, usage, the audit log and the settings (teams contract §4).

The routes (``api/manage/``) parse a request and call one function here with the caller's
:class:`~codexgw.policy.access.Principal`; this module decides (who may, with ``policy.access``;
what the values are, with ``policy.fields``), writes the store with the change's audit entry in the
same transaction (in a worker thread), makes the change in force in this process at once (a
reload) and publishes its event. Errors are codexgw errors the one boundary answers: 400 naming
the field, 403, 404 (what the caller may not see does not exist for them), 409 for a name taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from codexgw.errors import ConflictError, ForbiddenError, InvalidRequestError, NotFoundError
from codexgw.policy.access import Principal, may_see
from codexgw.policy.durations import parse_duration
from codexgw.policy.fields import FieldError, check_name, check_role, key_fields
from codexgw.policy.keys import ApiKey
from codexgw.store.audit import Audit, read_audit
from codexgw.store.keys import create_key, get_key, list_keys, new_secret, revoke_key, rotate_key, update_key
from codexgw.store.models import NameTakenError, StoreError, UnknownNameError
from codexgw.store.settings import SETTINGS, read_settings, write_settings
from codexgw.store.usage import GROUPINGS, read_usage
from codexgw.store.users import (
    add_user,
    get_user,
    list_users,
    new_password_hash,
    remove_user,
    set_password,
    set_role,
)

if TYPE_CHECKING:
    from codexgw.upstream.gateway import Gateway

__all__ = [
    "apply_stored_settings",
    "audit_entries",
    "change_key",
    "change_settings",
    "change_user",
    "create_user",
    "delete_user",
    "find_key",
    "find_user",
    "new_key",
    "remove_key",
    "roll_key",
    "settings_of",
    "usage",
    "visible_keys",
]

T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    """Run a store call in a worker thread (the store is synchronous)."""
    return await trio.to_thread.run_sync(fn)


@contextmanager
def store_errors() -> Iterator[None]:
    """The store's refusals as HTTP errors: a name taken → 409, an unknown reference → 400 naming
    the field, any other refusal (the last admin …) → 409."""
    try:
        yield
    except NameTakenError as exc:
        raise ConflictError(str(exc), param="name") from None
    except UnknownNameError as exc:
        raise InvalidRequestError(str(exc), param=exc.param) from None
    except StoreError as exc:
        raise ConflictError(str(exc)) from None


def field_values(data: Mapping[str, Any], *, now: float) -> dict[str, Any]:
    """``policy.fields.key_fields`` with a bad value as a 400 naming the field."""
    try:
        return key_fields(data, now=now)
    except FieldError as exc:
        raise InvalidRequestError(str(exc), param=exc.param) from None


def require_admin(principal: Principal) -> None:
    """Raises ForbiddenError (403) unless ``principal`` is an admin."""
    if not principal.is_admin:
        raise ForbiddenError("only an admin may do this")


def _since(text: str | None, now: float, default: str = "7d") -> float:
    try:
        return now - parse_duration(text or default)
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="since") from None


async def _in_force(gw: Gateway) -> None:
    """Reload now, so the change is in force in this process before the answer goes out."""
    await gw.account_state.reload()


def _key_event(gw: Gateway, key: ApiKey, action: str) -> None:
    gw.teams.events.publish("key", {"action": action, **key.public(gw.clock())}, owners=(key.owner,))


# -- keys -----------------------------------------------------------------------------------------


async def visible_keys(gw: Gateway, principal: Principal) -> list[ApiKey]:
    """The keys ``principal`` may see: an admin all, a member their own."""
    keys = await in_thread(lambda: list_keys(gw.store))
    return [k for k in keys if may_see(principal, k.owner)]


async def find_key(gw: Gateway, principal: Principal, name: str) -> ApiKey:
    """The key ``name`` if ``principal`` may see it; else 404."""
    key = await in_thread(lambda: get_key(gw.store, name))
    if key is None or not may_see(principal, key.owner):
        raise NotFoundError(f"no key named '{name}'")
    return key


def _check_key_fields(gw: Gateway, principal: Principal, fields: dict[str, Any]) -> None:
    """A member's keys are their own, never admin keys, and reach only their own accounts."""
    if principal.is_admin:
        return
    if "owner" in fields and fields["owner"] != principal.user:
        raise ForbiddenError("a member's keys are their own; only an admin may set owner", param="owner")
    if fields.get("admin"):
        raise ForbiddenError("only an admin may create admin keys", param="admin")
    mine = {a.name for a in gw.accounts.values() if a.owner == principal.user}
    for account in fields.get("accounts") or ():
        if account not in mine:
            raise InvalidRequestError(f"no account named '{account}'", param="accounts")


async def new_key(gw: Gateway, principal: Principal, body: Mapping[str, Any]) -> tuple[ApiKey, str]:
    """``POST /api/keys``: create a key; returns it and its secret (shown once)."""
    now = gw.clock()
    fields = field_values(body, now=now)
    if "name" not in fields:
        raise InvalidRequestError("a key needs a name", param="name")
    if not principal.is_admin:
        fields.setdefault("owner", principal.user)
    _check_key_fields(gw, principal, fields)
    secret = new_secret()
    audit = Audit(principal.actor, "key.create", fields["name"], {"prefix": secret[:12]})
    with store_errors():
        key = await in_thread(lambda: create_key(gw.store, fields, secret, now=now, audit=audit))
    await _in_force(gw)
    _key_event(gw, key, "created")
    return key, secret


async def change_key(gw: Gateway, principal: Principal, name: str, body: Mapping[str, Any]) -> ApiKey:
    """``PATCH /api/keys/{name}``: change any key field."""
    await find_key(gw, principal, name)
    now = gw.clock()
    fields = field_values(body, now=now)
    _check_key_fields(gw, principal, fields)
    detail = {k: v for k, v in fields.items() if k not in ("accounts", "models")}
    audit = Audit(principal.actor, "key.update", name, detail)
    with store_errors():
        key = await in_thread(lambda: update_key(gw.store, name, fields, now=now, audit=audit))
    if key is None:
        raise NotFoundError(f"no key named '{name}'")
    await _in_force(gw)
    _key_event(gw, key, "changed")
    return key


async def remove_key(gw: Gateway, principal: Principal, name: str) -> None:
    """``DELETE /api/keys/{name}``: revoke (kept for its usage history)."""
    await find_key(gw, principal, name)
    audit = Audit(principal.actor, "key.revoke", name)
    key = await in_thread(lambda: revoke_key(gw.store, name, now=gw.clock(), audit=audit))
    if key is None:
        raise NotFoundError(f"no key named '{name}'")
    await _in_force(gw)
    _key_event(gw, key, "revoked")


async def roll_key(
    gw: Gateway, principal: Principal, name: str, body: Mapping[str, Any]
) -> tuple[ApiKey, str]:
    """``POST /api/keys/{name}/rotate``: a new secret; the old one works ``grace`` more (default 0)."""
    current = await find_key(gw, principal, name)
    if current.revoked_at is not None:
        raise ConflictError(f"key '{name}' is revoked; create a new one")
    grace = body.get("grace", "0")
    try:
        grace_s = parse_duration(str(grace))
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="grace") from None
    secret = new_secret()
    audit = Audit(principal.actor, "key.rotate", name, {"prefix": secret[:12], "grace_s": grace_s})
    key = await in_thread(
        lambda: rotate_key(gw.store, name, secret, grace_s=grace_s, now=gw.clock(), audit=audit)
    )
    if key is None:
        raise NotFoundError(f"no key named '{name}'")
    await _in_force(gw)
    _key_event(gw, key, "rotated")
    return key, secret


# -- usage and audit --------------------------------------------------------------------------------


async def usage(gw: Gateway, principal: Principal, query: Mapping[str, str]) -> dict[str, Any]:
    """``GET /api/usage`` (and a key's ``/usage``): ``{"since", "by", "data"}``. A member sees the
    rows of their own keys and of their own accounts. Flushes first, so the answer is current."""
    now = gw.clock()
    since = _since(query.get("since"), now)
    by = query.get("by") or "day"
    if by not in GROUPINGS:
        raise InvalidRequestError(f"by must be one of {', '.join(GROUPINGS)}", param="by")
    keys = accounts = None
    if not principal.is_admin:
        keys = [k.name for k in await visible_keys(gw, principal)]
        accounts = [a.name for a in gw.accounts.values() if a.owner == principal.user]
    await gw.teams.flush()
    rows = await in_thread(
        lambda: read_usage(
            gw.store,
            since=since,
            by=by,
            key=query.get("key") or None,
            account=query.get("account") or None,
            model=query.get("model") or None,
            keys=keys,
            accounts=accounts,
        )
    )
    return {"since": since, "by": by, "data": rows}


async def audit_entries(gw: Gateway, principal: Principal, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """``GET /api/audit``: newest first; a member sees their own actions."""
    now = gw.clock()
    since = _since(query.get("since"), now)
    try:
        limit = int(query.get("limit") or 1000)
    except ValueError:
        raise InvalidRequestError("limit must be an integer", param="limit") from None
    actor = None if principal.is_admin else principal.actor
    return await in_thread(
        lambda: read_audit(gw.store, since=since, limit=min(max(limit, 1), 10_000), actor=actor)
    )


# -- users (admins only) -------------------------------------------------------------------------


def _password_hash(password: Any) -> str:
    if not isinstance(password, str):
        raise InvalidRequestError("password must be a string", param="password")
    try:
        return new_password_hash(password)
    except StoreError as exc:
        raise InvalidRequestError(str(exc), param="password") from None


def _checked(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except FieldError as exc:
        raise InvalidRequestError(str(exc), param=exc.param) from None


async def find_user(gw: Gateway, principal: Principal, name: str) -> dict[str, Any]:
    """``GET /api/users/{name}``."""
    require_admin(principal)
    user = await in_thread(lambda: get_user(gw.store, name))
    if user is None:
        raise NotFoundError(f"no user named '{name}'")
    return user.public()


async def all_users(gw: Gateway, principal: Principal) -> list[dict[str, Any]]:
    """``GET /api/users``."""
    require_admin(principal)
    return [u.public() for u in await in_thread(lambda: list_users(gw.store))]


async def create_user(gw: Gateway, principal: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /api/users``: ``{"name", "role", "password"}``."""
    require_admin(principal)
    name = _checked(lambda: check_name(body.get("name"), what="the user name"))
    role = _checked(lambda: check_role(body.get("role", "member")))
    hashed = await in_thread(lambda: _password_hash(body.get("password")))
    audit = Audit(principal.actor, "user.create", name, {"role": role})
    with store_errors():
        user = await in_thread(lambda: add_user(gw.store, name, role, hashed, now=gw.clock(), audit=audit))
    await _in_force(gw)
    return user.public()


async def change_user(
    gw: Gateway, principal: Principal, name: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """``PATCH /api/users/{name}``: ``role`` and/or ``password`` (a new password ends their sessions)."""
    require_admin(principal)
    unknown = set(body) - {"role", "password"}
    if unknown:
        raise InvalidRequestError(
            f"unknown field '{sorted(unknown)[0]}'; a user has role and password", param=sorted(unknown)[0]
        )
    await find_user(gw, principal, name)
    now = gw.clock()
    if "password" in body:
        hashed = await in_thread(lambda: _password_hash(body["password"]))
        audit = Audit(principal.actor, "user.password", name)
        await in_thread(lambda: set_password(gw.store, name, hashed, now=now, audit=audit))
    if "role" in body:
        role = _checked(lambda: check_role(body["role"]))
        audit = Audit(principal.actor, "user.update", name, {"role": role})
        with store_errors():
            await in_thread(lambda: set_role(gw.store, name, role, now=now, audit=audit))
    await _in_force(gw)
    return await find_user(gw, principal, name)


async def delete_user(gw: Gateway, principal: Principal, name: str) -> None:
    """``DELETE /api/users/{name}``: sessions end, keys revoked, accounts to the shared pool."""
    require_admin(principal)
    audit = Audit(principal.actor, "user.remove", name)
    with store_errors():
        removed = await in_thread(lambda: remove_user(gw.store, name, now=gw.clock(), audit=audit))
    if removed is None:
        raise NotFoundError(f"no user named '{name}'")
    await _in_force(gw)


# -- settings ---------------------------------------------------------------------------------------


def settings_of(gw: Gateway) -> dict[str, Any]:
    """``GET /api/settings``: the values in force."""
    s = gw.settings
    return {
        "reasoning_mode": s.reasoning_mode,
        "probe_interval_s": s.probe_interval_s,
        "default_cooldown_s": s.default_cooldown_s,
    }


def apply_settings(gw: Gateway, values: Mapping[str, Any]) -> None:
    """Put stored or patched ``values`` in force in this process."""
    for name, value in values.items():
        if getattr(gw.settings, name) == value:
            continue
        setattr(gw.settings, name, value)
        if name == "probe_interval_s":
            gw.prober.interval_s = float(value)


async def apply_stored_settings(gw: Gateway) -> None:
    """Follow the store's settings (an accounts follower: another process changed them)."""
    apply_settings(gw, await in_thread(lambda: read_settings(gw.store)))


async def change_settings(gw: Gateway, principal: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    """``PATCH /api/settings`` (admins only)."""
    from codexgw.translate.chat_chunks import REASONING_MODES

    require_admin(principal)
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name not in SETTINGS:
            raise InvalidRequestError(
                f"unknown setting '{name}'; settings are {', '.join(SETTINGS)}", param=name
            )
        if name == "reasoning_mode":
            if value not in REASONING_MODES:
                raise InvalidRequestError(
                    f"reasoning_mode must be one of {', '.join(REASONING_MODES)}", param=name
                )
        elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 10**9:
            raise InvalidRequestError(f"{name} must be a number of seconds >= 0", param=name)
        values[name] = value if name == "reasoning_mode" else float(value)
    audit = Audit(principal.actor, "settings.update", None, values)
    await in_thread(lambda: write_settings(gw.store, values, now=time.time(), audit=audit))
    apply_settings(gw, values)
    return settings_of(gw)
