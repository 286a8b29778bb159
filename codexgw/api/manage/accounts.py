"""``/api/accounts`` and ``/api/pool`` (teams contract §4). Routes only: the decisions are
:mod:`codexgw.upstream.manage_accounts`'s."""

from __future__ import annotations

from quart import Blueprint, Response, request

from codexgw.api.common import gateway, json_response
from codexgw.api.manage.auth import json_body, principal
from codexgw.errors import InvalidRequestError
from codexgw.upstream import manage_accounts as accounts

bp = Blueprint("manage_accounts", __name__)


@bp.get("/api/accounts")
async def list_accounts() -> Response:
    """``{"data": [account]}``: the caller's accounts (an admin: all)."""
    gw, who = gateway(), await principal()
    return json_response({"data": accounts.visible_accounts(gw, who)})


@bp.get("/api/accounts/<name>")
async def get_account(name: str) -> Response:
    """One ``account``."""
    gw, who = gateway(), await principal()
    return json_response(accounts.find_account(gw, who, name))


@bp.patch("/api/accounts/<name>")
async def change_account(name: str) -> Response:
    """Change ``enabled``, ``weight``, ``owner`` (admins) or ``name``: the ``account``."""
    gw, who = gateway(), await principal()
    return json_response(await accounts.change_account(gw, who, name, await json_body()))


@bp.delete("/api/accounts/<name>")
async def remove_account(name: str) -> Response:
    """Remove the account (204), revoking its login first unless ``?revoke=false``."""
    gw, who = gateway(), await principal()
    flag = request.args.get("revoke", "true").lower()
    if flag not in ("true", "false", "1", "0"):
        raise InvalidRequestError("revoke must be true or false", param="revoke")
    await accounts.remove_account(gw, who, name, revoke=flag in ("true", "1"))
    return Response("", status=204)


@bp.post("/api/accounts/<name>/refresh")
async def refresh_account(name: str) -> Response:
    """Refresh the account's token now: the ``account``."""
    gw, who = gateway(), await principal()
    return json_response(await accounts.refresh_account(gw, who, name))


@bp.post("/api/accounts/<name>/probe")
async def probe_account(name: str) -> Response:
    """Probe the account's quota now: the ``account`` with fresh quota."""
    gw, who = gateway(), await principal()
    return json_response(await accounts.probe_account(gw, who, name))


@bp.post("/api/accounts/<name>/reset")
async def reset_account(name: str) -> Response:
    """End the account's cooldown: the ``account``."""
    gw, who = gateway(), await principal()
    return json_response(accounts.reset_account(gw, who, name))


@bp.get("/api/pool")
async def pool() -> Response:
    """Strategy, pin, strategies, counts and headroom."""
    gw, who = gateway(), await principal()
    return json_response(accounts.pool_of(gw, who))


@bp.patch("/api/pool")
async def change_pool() -> Response:
    """Change ``strategy`` and/or ``pinned`` (an account name or null; admins only)."""
    gw, who = gateway(), await principal()
    return json_response(await accounts.change_pool(gw, who, await json_body()))
