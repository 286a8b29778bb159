"""``/api/users`` and ``/api/settings`` (admins only; teams contract §4). Routes only: the decisions
are :mod:`codexgw.upstream.manage`'s."""

from __future__ import annotations

from quart import Blueprint, Response

from codexgw.api.common import gateway, json_response
from codexgw.api.manage.auth import json_body, principal
from codexgw.upstream import manage

bp = Blueprint("manage_users", __name__)


@bp.get("/api/users")
async def list_users() -> Response:
    """``{"data": [user]}``."""
    gw, who = gateway(), await principal()
    return json_response({"data": await manage.all_users(gw, who)})


@bp.post("/api/users")
async def create_user() -> Response:
    """Create a user from ``{"name", "role", "password"}``: the ``user`` (201)."""
    gw, who = gateway(), await principal()
    return json_response(await manage.create_user(gw, who, await json_body()), status=201)


@bp.get("/api/users/<name>")
async def get_user(name: str) -> Response:
    """One ``user``."""
    gw, who = gateway(), await principal()
    return json_response(await manage.find_user(gw, who, name))


@bp.patch("/api/users/<name>")
async def change_user(name: str) -> Response:
    """Change ``role`` and/or ``password``: the ``user``."""
    gw, who = gateway(), await principal()
    return json_response(await manage.change_user(gw, who, name, await json_body()))


@bp.delete("/api/users/<name>")
async def remove_user(name: str) -> Response:
    """Remove a user (204): their keys are revoked, their accounts join the shared pool."""
    gw, who = gateway(), await principal()
    await manage.delete_user(gw, who, name)
    return Response("", status=204)


@bp.get("/api/settings")
async def settings() -> Response:
    """``{"reasoning_mode", "probe_interval_s", "default_cooldown_s"}`` in force."""
    gw, who = gateway(), await principal()
    manage.require_admin(who)
    return json_response(manage.settings_of(gw))


@bp.patch("/api/settings")
async def change_settings() -> Response:
    """Change any of the settings (kept in the store; they win over serve's flags)."""
    gw, who = gateway(), await principal()
    return json_response(await manage.change_settings(gw, who, await json_body()))
