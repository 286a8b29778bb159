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
from codexgw.api.manage.openapi_admin import admin_paths
from codexgw.api.manage.openapi_ops import JSON, KEY_AUTH, OPEN, errors_of, op, path_param
from codexgw.api.manage.schemas import SCHEMAS, ref

__all__ = ["bp", "document"]

bp = Blueprint("manage_openapi", __name__)

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
            **errors_of(V1_ERRORS),
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
    return operation


def _paths() -> dict[str, Any]:
    v1: dict[str, Any] = {
        "/v1/responses": {
            "post": _v1("Create a model response (OpenAI Responses API)", "ResponsesRequest", stream=True),
            "get": {
                "summary": "The Responses API over a WebSocket (the Codex CLI's transport): an upgrade "
                "request; each response.create is a turn, with the handshake's API key and its policy",
                "tags": ["openai"],
                "security": KEY_AUTH,
                "responses": {
                    "101": {"description": "switching protocols: events as text frames"},
                    "401": {
                        "description": "invalid_api_key, before the upgrade",
                        "content": {JSON: {"schema": ref("Error")}},
                    },
                },
            },
        },
        "/v1/chat/completions": {
            "post": _v1("Create a chat completion (OpenAI Chat Completions)", "ChatRequest", stream=True)
        },
        "/v1/models": {
            "get": _v1("List models (a key with an allowlist: the models it allows)", None, stream=False)
        },
        "/v1/models/{model}": {
            "parameters": [path_param("model", "a model id, an effort variant or an alias")],
            "get": _v1(
                "One model (404 model_not_found, also outside the key's allowlist)", None, stream=False
            ),
        },
        "/v1/modes": {"get": _v1("The reasoning modes and the models that accept each", None, stream=False)},
        "/v1/responses/compact": {"post": _v1("Compact a conversation", "ResponsesRequest", stream=False)},
    }
    for path in list(v1):
        alias = {
            m: {**o, "summary": o["summary"] + " (alias without /v1)"} if m != "parameters" else o
            for m, o in v1[path].items()
        }
        v1[path.removeprefix("/v1")] = alias
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
        **admin_paths(),
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
