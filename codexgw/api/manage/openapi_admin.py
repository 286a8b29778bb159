"""The admin API's paths in the OpenAPI document (teams contract §4)."""

from __future__ import annotations

from typing import Any

from codexgw.api.manage.openapi_ops import (
    ERRORS,
    OPEN,
    USAGE_QUERY,
    data_of,
    errors_of,
    op,
    path_param,
    query,
)
from codexgw.api.manage.schemas import ref

__all__ = ["admin_paths"]


def admin_paths() -> dict[str, Any]:
    """``/api/...``: sessions, setup, accounts, pool, logins, keys, usage, users, settings, audit, events."""
    name = [path_param("name", "the name (URL-encoded)")]
    login = [path_param("id", "the login's id")]
    keys_errors = ("400", "401", "403", "404", "409")
    return {
        "/api/session": {
            "post": op(
                "Sign in: sets the codexgw_session cookie",
                schema=ref("Session"),
                body="SignIn",
                errors=("400", "401", "429"),
                security=OPEN,
            ),
            "get": op("The current session", schema=ref("Session"), errors=("401",)),
            "delete": op("Sign out", ok="204", errors=("401", "403")),
        },
        "/api/setup": {
            "post": op(
                "Create the first admin with the setup token serve printed",
                schema=ref("Session"),
                body="Setup",
                errors=("400", "401", "409", "429"),
                security=OPEN,
            )
        },
        "/api/accounts": {"get": op("Accounts (a member: their own)", schema=data_of("Account"))},
        "/api/accounts/{name}": {
            "parameters": name,
            "get": op("One account", schema=ref("Account")),
            "patch": op(
                "Change enabled, weight, owner (admins), name",
                schema=ref("Account"),
                body="AccountPatch",
                errors=keys_errors,
            ),
            "delete": {
                **op("Remove the account (its login revoked unless revoke=false)", ok="204"),
                "parameters": [
                    query(
                        "revoke", "revoke the login's refresh token first (default true)", {"type": "boolean"}
                    )
                ],
            },
        },
        **{
            f"/api/accounts/{{name}}/{verb}": {
                "parameters": name,
                "post": op(text, schema=ref("Account"), errors=("401", "403", "404", "502")),
            }
            for verb, text in (
                ("refresh", "Refresh the token now"),
                ("probe", "Probe the quota now"),
                ("reset", "End the cooldown"),
            )
        },
        "/api/pool": {
            "get": op("Strategy, pin, strategies, counts, headroom", schema=ref("Pool")),
            "patch": op(
                "Change the strategy or pin (admins)",
                schema=ref("Pool"),
                body="PoolPatch",
                errors=keys_errors,
            ),
        },
        "/api/logins/device": {
            "post": op(
                "Start a device-code login",
                ok="201",
                schema=ref("Login"),
                body="LoginStart",
                errors=("400", "401", "403", "502"),
            )
        },
        "/api/logins/pkce": {
            "post": op(
                "Start a browser login (the callback listens on 127.0.0.1:1455 while it waits)",
                ok="201",
                schema=ref("Login"),
                body="LoginStart",
                errors=("400", "401", "403", "409"),
            )
        },
        "/api/logins/{id}": {"parameters": login, "get": op("A login's status", schema=ref("Login"))},
        "/api/logins/{id}/redirect": {
            "parameters": login,
            "post": op(
                "Hand a browser login the pasted redirect URL",
                schema=ref("Login"),
                body="Redirect",
                errors=("400", "401", "403", "404"),
            ),
        },
        "/api/keys": {
            "get": op("API keys (a member: their own; never a secret)", schema=data_of("Key")),
            "post": op(
                "Create a key: the secret is shown once",
                ok="201",
                schema=ref("KeyWithSecret"),
                body="KeyFields",
                errors=keys_errors,
            ),
        },
        "/api/keys/{name}": {
            "parameters": name,
            "get": op("One key", schema=ref("Key")),
            "patch": op("Change any key field", schema=ref("Key"), body="KeyFields", errors=keys_errors),
            "delete": op("Revoke the key (kept for its usage history)", ok="204"),
        },
        "/api/keys/{name}/rotate": {
            "parameters": name,
            "post": op(
                "A new secret; the old one valid for grace",
                schema=ref("KeyWithSecret"),
                body="Rotate",
                errors=keys_errors,
            ),
        },
        "/api/keys/{name}/usage": {
            "parameters": name,
            "get": op("One key's usage", schema=ref("Usage"), params=USAGE_QUERY),
        },
        "/api/usage": {
            "get": op(
                "Usage (a member: their keys and accounts)",
                schema=ref("Usage"),
                params=[
                    *USAGE_QUERY,
                    query("key", "only this key"),
                    query("account", "only this account"),
                    query("model", "only this model"),
                ],
                errors=("400", "401", "403"),
            )
        },
        "/api/users": {
            "get": op("Users (admins)", schema=data_of("User"), errors=("401", "403")),
            "post": op(
                "Create a user (admins)", ok="201", schema=ref("User"), body="UserCreate", errors=keys_errors
            ),
        },
        "/api/users/{name}": {
            "parameters": name,
            "get": op("One user (admins)", schema=ref("User")),
            "patch": op(
                "Change role or password (admins)", schema=ref("User"), body="UserPatch", errors=keys_errors
            ),
            "delete": op(
                "Remove a user: their keys are revoked, their accounts join the shared pool (admins)",
                ok="204",
                errors=("401", "403", "404", "409"),
            ),
        },
        "/api/settings": {
            "get": op("Settings in force (admins)", schema=ref("Settings"), errors=("401", "403")),
            "patch": op(
                "Change settings (admins; kept in the store, they win over serve's flags)",
                schema=ref("Settings"),
                body="Settings",
                errors=("400", "401", "403"),
            ),
        },
        "/api/audit": {
            "get": op(
                "Who changed what, newest first (a member: their own actions)",
                schema=data_of("AuditEntry"),
                params=[
                    query("since", "how far back (default 7d)"),
                    query("limit", "at most this many", {"type": "integer"}),
                ],
                errors=("400", "401", "403"),
            )
        },
        "/api/events": {
            "get": {
                **op(
                    "Live events (SSE): account, pool, login, request, key; a comment heartbeat every 15 s",
                    errors=("401", "403"),
                ),
                "responses": {
                    "200": {
                        "description": "text/event-stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **errors_of(ERRORS, ("401", "403")),
                },
            }
        },
    }
