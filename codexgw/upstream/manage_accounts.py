"""The admin API's operations on accounts and the pool (teams contract §4), as :mod:`.manage` does
for keys and users: access decided with ``policy.access``, store writes audited in their own
transaction, the change in force at once (a reload), an event published.

Members see and change only the accounts they own (``enabled``, ``weight``, ``name``; refresh,
probe, reset, remove); only admins set owners and the pool's strategy and pin.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from codexgw.errors import ForbiddenError, InvalidRequestError, NotFoundError, UpstreamError
from codexgw.oauth.tokens import RefreshError, build_revoke_request
from codexgw.policy.access import Principal, may_see
from codexgw.policy.fields import FieldError, check_name
from codexgw.store.account_changes import change_account as change_account_row
from codexgw.store.audit import Audit, record
from codexgw.store.pool_settings import set_pinned, set_strategy
from codexgw.upstream.admin import account_shapes, pool_shape
from codexgw.upstream.manage import in_thread, require_admin, store_errors

if TYPE_CHECKING:
    from codexgw.store.sqlite import Account
    from codexgw.upstream.gateway import Gateway

__all__ = [
    "change_account",
    "change_pool",
    "find_account",
    "pool_of",
    "probe_account",
    "refresh_account",
    "remove_account",
    "reset_account",
    "visible_accounts",
]

log = logging.getLogger("codexgw.upstream.manage")

ACCOUNT_FIELDS = ("enabled", "weight", "owner", "name")


def _account(gw: Gateway, principal: Principal, name: str) -> Account:
    account = next((a for a in gw.accounts.values() if a.name == name), None)
    if account is None or not may_see(principal, account.owner):
        raise NotFoundError(f"no account named '{name}'")
    return account


def _shape(gw: Gateway, name: str) -> dict[str, Any]:
    for _owner, shape in account_shapes(gw):
        if shape["name"] == name:
            return shape
    raise NotFoundError(f"no account named '{name}'")


def _published(gw: Gateway, name: str) -> dict[str, Any]:
    shape = _shape(gw, name)
    gw.teams.events.publish("account", shape, owners=(shape["owner"],))
    return shape


def visible_accounts(gw: Gateway, principal: Principal) -> list[dict[str, Any]]:
    """``GET /api/accounts``: the accounts ``principal`` may see, as the contract's ``account``."""
    return [shape for owner, shape in account_shapes(gw) if may_see(principal, owner)]


def find_account(gw: Gateway, principal: Principal, name: str) -> dict[str, Any]:
    """``GET /api/accounts/{name}``."""
    _account(gw, principal, name)
    return _shape(gw, name)


async def change_account(
    gw: Gateway, principal: Principal, name: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """``PATCH /api/accounts/{name}``: any of ``enabled``, ``weight``, ``owner`` (admins), ``name``."""
    _account(gw, principal, name)
    for field in body:
        if field not in ACCOUNT_FIELDS:
            raise InvalidRequestError(
                f"unknown field '{field}'; an account has {', '.join(ACCOUNT_FIELDS)}", param=field
            )
    if "owner" in body and not principal.is_admin:
        raise ForbiddenError("only an admin may change an account's owner", param="owner")
    enabled, weight, owner = body.get("enabled"), body.get("weight"), body.get("owner")
    if "enabled" in body and not isinstance(enabled, bool):
        raise InvalidRequestError("enabled must be true or false", param="enabled")
    if "weight" in body and (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or weight < 0
    ):
        raise InvalidRequestError("weight must be a number >= 0", param="weight")
    if owner is not None and not isinstance(owner, str):
        raise InvalidRequestError("owner must be a user name or null", param="owner")
    new_name = body.get("name", name)
    try:
        check_name(new_name, what="the account name")
    except FieldError as exc:
        raise InvalidRequestError(str(exc), param="name") from None
    changes = {k: body[k] for k in ACCOUNT_FIELDS if k in body}
    audit = Audit(principal.actor, "account.update", name, changes)
    with store_errors():
        found = await in_thread(
            lambda: change_account_row(gw.store, name, changes, now=gw.clock(), audit=audit)
        )
    if not found:
        raise NotFoundError(f"no account named '{name}'")
    await gw.account_state.reload()
    return _published(gw, new_name)


async def remove_account(gw: Gateway, principal: Principal, name: str, *, revoke: bool) -> None:
    """``DELETE /api/accounts/{name}?revoke=true``: revoke the login's refresh token (best effort;
    not for an account linked to a Codex ``auth.json``), then remove the account."""
    from codexgw.auth.login import LoginError, send

    account = _account(gw, principal, name)
    if revoke and not account.linked_path:
        try:
            await send(
                gw.http,
                build_revoke_request(gw.settings.auth_url, refresh_token=account.refresh_token),
                what="revoke",
            )
        except LoginError as exc:
            log.warning("could not revoke the login of %s (%s); removing anyway", name, exc)
    audit = Audit(principal.actor, "account.remove", name, {"revoked": revoke and not account.linked_path})

    def write() -> bool:
        removed = gw.store.remove_account(name)
        if removed:
            record(gw.store, audit, now=gw.clock())
        return removed

    if not await in_thread(write):
        raise NotFoundError(f"no account named '{name}'")
    await gw.account_state.reload()


async def refresh_account(gw: Gateway, principal: Principal, name: str) -> dict[str, Any]:
    """``POST /api/accounts/{name}/refresh``: refresh its token now (single-flight).

    Raises:
        UpstreamError: 502, the refresh failed (the account may now need a login).
    """
    account = _account(gw, principal, name)
    try:
        await gw.refresh(account, stale_access_token=account.access_token)
    except (RefreshError, TimeoutError) as exc:
        raise UpstreamError(f"the refresh of {name} failed: {exc}") from None
    return _published(gw, name)


async def probe_account(gw: Gateway, principal: Principal, name: str) -> dict[str, Any]:
    """``POST /api/accounts/{name}/probe``: ask ``/wham/usage`` for its quota now.

    Raises:
        UpstreamError: 502, the probe got no usable answer.
    """
    from codexgw.upstream.prober import ProbeFailed

    account = _account(gw, principal, name)
    try:
        await gw.prober.probe(account.id)
    except ProbeFailed as exc:
        raise UpstreamError(str(exc)) from None
    return _published(gw, name)


def reset_account(gw: Gateway, principal: Principal, name: str) -> dict[str, Any]:
    """``POST /api/accounts/{name}/reset``: end its cooldown now."""
    account = _account(gw, principal, name)
    gw.pool.clear_cooldown(account.id)
    return _published(gw, name)


def pool_of(gw: Gateway, principal: Principal) -> dict[str, Any]:
    """``GET /api/pool``; a member's counts and headroom cover their own accounts."""
    visible = (
        None if principal.is_admin else {a.name for a in gw.accounts.values() if a.owner == principal.user}
    )
    return pool_shape(gw, visible=visible)


async def change_pool(gw: Gateway, principal: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    """``PATCH /api/pool``: ``{"strategy"?, "pinned"?: account name or null}`` (admins only)."""
    require_admin(principal)
    for field in body:
        if field not in ("strategy", "pinned"):
            raise InvalidRequestError(
                f"unknown field '{field}'; the pool has strategy and pinned", param=field
            )
    pinned_id: int | None = None
    if body.get("pinned") is not None:
        target = next((a for a in gw.accounts.values() if a.name == body["pinned"]), None)
        if target is None:
            raise InvalidRequestError(f"no account named '{body['pinned']}'", param="pinned")
        pinned_id = target.id
    store, now = gw.store, gw.clock()
    audit = Audit(principal.actor, "pool.update", None, dict(body))

    def write() -> None:
        if "strategy" in body:
            set_strategy(store, str(body["strategy"]))
        if "pinned" in body:
            set_pinned(store, pinned_id)
        record(store, audit, now=now)

    with store_errors():
        await in_thread(write)
    await gw.account_state.reload()
    shape = pool_of(gw, principal)
    gw.teams.events.publish("pool", {"strategy": shape["strategy"], "pinned": shape["pinned"]})
    return shape
