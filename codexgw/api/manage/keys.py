"""``/api/keys``, ``/api/usage``, ``/api/audit`` (teams contract §4). Routes only: the decisions are
:mod:`codexgw.upstream.manage`'s."""

from __future__ import annotations

from quart import Blueprint, Response, request

from codexgw.api.common import gateway, json_response
from codexgw.api.manage.auth import json_body, principal
from codexgw.upstream import manage

bp = Blueprint("manage_keys", __name__)


@bp.get("/api/keys")
async def list_keys() -> Response:
    """``{"data": [key]}``: the caller's keys (an admin: all), never a secret."""
    gw, who = gateway(), await principal()
    now = gw.clock()
    return json_response({"data": [k.public(now) for k in await manage.visible_keys(gw, who)]})


@bp.post("/api/keys")
async def create_key() -> Response:
    """Create a key: ``key`` plus its ``secret``, shown this once (201)."""
    gw, who = gateway(), await principal()
    key, secret = await manage.new_key(gw, who, await json_body())
    return json_response({**key.public(gw.clock()), "secret": secret}, status=201)


@bp.get("/api/keys/<name>")
async def get_key(name: str) -> Response:
    """One ``key``."""
    gw, who = gateway(), await principal()
    return json_response((await manage.find_key(gw, who, name)).public(gw.clock()))


@bp.patch("/api/keys/<name>")
async def change_key(name: str) -> Response:
    """Change any key field: the ``key``."""
    gw, who = gateway(), await principal()
    key = await manage.change_key(gw, who, name, await json_body())
    return json_response(key.public(gw.clock()))


@bp.delete("/api/keys/<name>")
async def revoke_key(name: str) -> Response:
    """Revoke (204); the key stays for its usage history."""
    gw, who = gateway(), await principal()
    await manage.remove_key(gw, who, name)
    return Response("", status=204)


@bp.post("/api/keys/<name>/rotate")
async def rotate_key(name: str) -> Response:
    """A new secret (``{"grace": "1h"}`` keeps the old one valid that long): ``key`` plus ``secret``."""
    gw, who = gateway(), await principal()
    key, secret = await manage.roll_key(gw, who, name, await json_body())
    return json_response({**key.public(gw.clock()), "secret": secret})


@bp.get("/api/keys/<name>/usage")
async def key_usage(name: str) -> Response:
    """``usage`` of one key (``?since=7d&by=day|hour|model|account``)."""
    gw, who = gateway(), await principal()
    key = await manage.find_key(gw, who, name)
    query = {**request.args.to_dict(), "key": key.name}
    return json_response(await manage.usage(gw, who, query))


@bp.get("/api/usage")
async def usage() -> Response:
    """``usage`` (``?since=&by=&key=&account=&model=``); a member's covers their keys and accounts."""
    gw, who = gateway(), await principal()
    return json_response(await manage.usage(gw, who, request.args.to_dict()))


@bp.get("/api/audit")
async def audit() -> Response:
    """``{"data": [{"at", "actor", "action", "target", "detail"}]}`` newest first (``?since=7d&limit=``);
    a member sees their own actions."""
    gw, who = gateway(), await principal()
    return json_response({"data": await manage.audit_entries(gw, who, request.args.to_dict())})
