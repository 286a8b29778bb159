"""``/api/logins`` (teams contract §4): device-code and browser logins run by the server. Routes
only: :class:`codexgw.upstream.logins.Logins` runs them."""

from __future__ import annotations

from quart import Blueprint, Response, current_app

from codexgw.api.common import gateway, json_response
from codexgw.api.manage.auth import json_body, principal
from codexgw.upstream.logins import Logins

bp = Blueprint("manage_logins", __name__)


def logins() -> Logins:
    """The app's :class:`Logins` (made with the app)."""
    return current_app.extensions["codexgw_logins"]


@bp.post("/api/logins/device")
async def start_device() -> Response:
    """``{"name"?, "owner"?}``: ``{"id", "kind": "device", "user_code", "verification_uri",
    "expires_in", "expires_at", "status": "pending"}`` (201)."""
    gw, who = gateway(), await principal()
    login = await logins().start_device(who, await json_body())
    return json_response(login.public(gw.clock()), status=201)


@bp.post("/api/logins/pkce")
async def start_pkce() -> Response:
    """``{"name"?, "owner"?}``: ``{"id", "kind": "pkce", "authorize_url", "expires_at", "status"}`` (201)."""
    gw, who = gateway(), await principal()
    login = await logins().start_pkce(who, await json_body())
    return json_response(login.public(gw.clock()), status=201)


@bp.get("/api/logins/<login_id>")
async def get_login(login_id: str) -> Response:
    """The login's status (``pending``, ``approved`` with ``account``, ``failed``/``expired`` with ``error``)."""
    gw, who = gateway(), await principal()
    return json_response(logins().get(who, login_id).public(gw.clock()))


@bp.post("/api/logins/<login_id>/redirect")
async def paste_redirect(login_id: str) -> Response:
    """``{"url"}``: the browser's ``http://localhost:1455/auth/callback?...`` URL; the login's status."""
    gw, who = gateway(), await principal()
    body = await json_body()
    login = await logins().redirect(who, login_id, body.get("url"))
    return json_response(login.public(gw.clock()))
