"""``GET /api/openapi.json``: the OpenAPI 3.1 document of every route codexgw serves.

The OpenAI-compatible ``/v1`` routes (and their unprefixed aliases), the operator routes
(``/health``, ``/status``, ``/metrics``) and the admin API of the teams contract. Served without
authentication (it holds no data). ``tests/test_openapi.py`` checks it structurally and that every
route the app serves is in it.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from codexgw import __version__
from codexgw.api.common import json_response
from codexgw.api.manage.schemas import SCHEMAS, ref

__all__ = ["bp", "document"]

bp = Blueprint("manage_openapi", __name__)

JSON = "application/json"
ERRORS = {
    "400": "a bad field (named in error.param)",
    "401": "no session or admin key (code unauthenticated), or a bad API key (invalid_api_key)",
    "403": "forbidden: a member's request about another member's thing, not an admin, csrf_failed",
    "404": "no such thing (or not yours)",
    "409": "conflict: the name is taken, or the change is refused (the last admin …)",
    "429": "too many failed sign-ins (Retry-After)",
    "502": "the upstream failed (a refresh, a quota probe, the device code)",
}
V1_ERRORS = {
    "400": "a malformed request",
    "401": "invalid_api_key: none, unknown, revoked or expired",
    "403": "model_not_allowed: the model is outside the key's allowlist",
    "429": "rate_limit_exceeded (type requests|tokens; a key's limit) or usage_limit_reached (every "
    "account in scope at its plan's limit); Retry-After",
    "503": "no account in the key's scope can serve now (Retry-After when one frees up)",
}
RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (
        ("x-ratelimit-limit-requests", "the key's rpm (only for a key with rpm)"),
        ("x-ratelimit-remaining-requests", "requests left in the minute window"),
        ("x-ratelimit-reset-requests", "until the window is empty again (1s, 6m0s, 120ms)"),
        ("x-ratelimit-limit-tokens", "the key's tpm (only for a key with tpm)"),
        ("x-ratelimit-remaining-tokens", "tokens left in the minute window"),
        ("x-ratelimit-reset-tokens", "until the token window is empty again"),
        ("x-codexgw-effort-lowered", "the key's effort ceiling lowered the effort: xhigh->medium"),
        ("x-codexgw-dropped-params", "parameters the ChatGPT backend rejects, removed"),
    )
}


def _errors(codes: dict[str, str], only: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {
        code: {"description": text, "content": {JSON: {"schema": ref("Error")}}}
        for code, text in codes.items()
        if only is None or code in only
    }


def op(
    summary: str,
    *,
    ok: str = "200",
    schema: dict[str, Any] | None = None,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[str, ...] = ("401", "403", "404"),
    tag: str = "admin",
    security: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    """One operation: ``ok`` answered with ``schema`` (none for 204), the ``errors`` listed."""
    answer: dict[str, Any] = {"description": "OK" if ok != "204" else "done, no content"}
    if schema is not None:
        answer["content"] = {JSON: {"schema": schema}}
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {ok: answer, **_errors(ERRORS, errors)},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
    if params:
        operation["parameters"] = params
    if security is not None:
        operation["security"] = security
    return operation


def path_param(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": what, "schema": {"type": "string"}}


def query(name: str, what: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": what,
        "schema": schema or {"type": "string"},
    }


def data_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref(name)}},
        "required": ["data"],
    }


USAGE_QUERY = [
    query("since", "how far back: 1h, 7d, 30d (default 7d)"),
    query("by", "grouping", {"enum": ["day", "hour", "model", "account", "key"]}),
]
OPEN: list[dict[str, list[str]]] = []
KEY_AUTH = [{"bearer": []}, {"apiKeyHeader": []}]


def _v1(summary: str, body: str | None, *, stream: bool) -> dict[str, Any]:
    content: dict[str, Any] = {JSON: {"schema": ref("OpenAIObject")}}
    if stream:
        content["text/event-stream"] = {"schema": {"type": "string", "description": "SSE events"}}
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["openai"],
        "security": KEY_AUTH,
        "responses": {
            "200": {"description": "OK", "headers": RATE_HEADERS, "content": content},
            **_errors(V1_ERRORS),
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
    return operation


def _paths() -> dict[str, Any]:
    name = [path_param("name", "the name (URL-encoded)")]
    login = [path_param("id", "the login's id")]
    v1: dict[str, Any] = {
        "/v1/responses": {
            "post": _v1("Create a model response (OpenAI Responses API)", "ResponsesRequest", stream=True),
            "get": {
                "summary": "The WebSocket transport of the Responses API (an upgrade request)",
                "tags": ["openai"],
                "responses": {
                    "426": {
                        "description": "refused: use POST (the Codex CLI falls back to HTTP at once)",
                        "content": {JSON: {"schema": ref("Error")}},
                    }
                },
            },
        },
        "/v1/chat/completions": {
            "post": _v1("Create a chat completion (OpenAI Chat Completions)", "ChatRequest", stream=True)
        },
        "/v1/models": {"get": _v1("List models", None, stream=False)},
        "/v1/responses/compact": {"post": _v1("Compact a conversation", "ResponsesRequest", stream=False)},
    }
    for path in list(v1):
        alias = {m: {**o, "summary": o["summary"] + " (alias without /v1)"} for m, o in v1[path].items()}
        v1[path.removeprefix("/v1")] = alias
    keys_errors = ("400", "401", "403", "404", "409")
    return {
        **v1,
        "/health": {
            "get": op(
                "Liveness and a one-line pool summary",
                schema={"type": "object"},
                errors=(),
                tag="operator",
                security=OPEN,
            )
        },
        "/status": {
            "get": op(
                "The pool's state and today's usage per key (an admin key once keys exist)",
                schema={"type": "object"},
                errors=("401", "403"),
                tag="operator",
                security=KEY_AUTH,
            )
        },
        "/metrics": {
            "get": {
                **op(
                    "Prometheus metrics (an admin key once keys exist)",
                    errors=("401", "403"),
                    tag="operator",
                    security=KEY_AUTH,
                ),
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/api/openapi.json": {
            "get": op("This document", schema={"type": "object"}, errors=(), tag="meta", security=OPEN)
        },
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
                    **_errors(ERRORS, ("401", "403")),
                },
            }
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "codexgw",
            "version": __version__,
            "description": "An OpenAI-compatible API over a pool of ChatGPT (Codex) logins, with users, "
            "API keys with a policy each, usage accounting and an admin API. Admin requests "
            "authenticate with an admin API key or the codexgw_session cookie of POST /api/session; "
            "a change with the cookie needs the x-csrf-token header (the session's csrf_token).",
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "openai", "description": "OpenAI-compatible routes (an API key once any exists)"},
            {"name": "operator", "description": "health, status, metrics"},
            {"name": "admin", "description": "the admin API (teams)"},
            {"name": "meta", "description": "this document"},
        ],
        "security": [{"bearer": []}, {"apiKeyHeader": []}, {"session": [], "csrf": []}],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key (cgw-…) or serve --api-key",
                },
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "session": {"type": "apiKey", "in": "cookie", "name": "codexgw_session"},
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-csrf-token",
                    "description": "with the session cookie, on changes",
                },
            },
        },
    }


@bp.get("/api/openapi.json")
async def openapi() -> Response:
    """The document (no authentication: it holds no data)."""
    return json_response(document(), headers={"cache-control": "no-cache"})
