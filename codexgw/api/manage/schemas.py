"""The schemas of the OpenAPI document (:mod:`codexgw.api.manage.openapi`): the teams contract's shapes.

JSON Schema 2020-12 as OpenAPI 3.1 takes it. The ``/v1`` bodies are OpenAI's (their full schemas
live in OpenAI's own OpenAPI document); here they are described by their fields that codexgw reads.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMAS"]


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


STR, INT, NUM, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
EPOCH = {"type": "number", "description": "epoch seconds"}
NAMES = nullable({"type": "array", "items": STR})
LIMIT = nullable({"type": "integer", "minimum": 0, "description": "0 or null: no limit"})


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


WINDOW = obj({"used_percent": NUM, "window_minutes": nullable(INT), "resets_at": nullable(EPOCH)})

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        {
            "error": obj(
                {"message": STR, "type": STR, "param": nullable(STR), "code": nullable(STR)},
                ["message", "type", "param", "code"],
            )
        },
        ["error"],
        description="OpenAI's error shape; every error of codexgw has it.",
    ),
    "Window": WINDOW,
    "Account": obj(
        {
            "name": STR,
            "email": nullable(STR),
            "plan_type": nullable(STR),
            "owner": nullable(STR),
            "enabled": BOOL,
            "weight": NUM,
            "status": {"type": "string", "description": "active, needs_login, …"},
            "status_reason": nullable(STR),
            "pinned": BOOL,
            "usable": BOOL,
            "cooldown": nullable(obj({"until": EPOCH, "in_s": NUM, "reason": nullable(STR)})),
            "quota": nullable(
                obj(
                    {
                        "primary": nullable(ref("Window")),
                        "secondary": nullable(ref("Window")),
                        "headroom_percent": NUM,
                        "observed_at": EPOCH,
                        "limit_reached": BOOL,
                    }
                )
            ),
            "requests": INT,
            "errors": INT,
            "last_error": nullable(STR),
            "last_used_at": nullable(EPOCH),
            "access_expires_at": nullable(EPOCH),
            "last_refresh": nullable(EPOCH),
        },
        ["name", "owner", "enabled", "status", "usable"],
    ),
    "AccountPatch": obj(
        {"enabled": BOOL, "weight": {"type": "number", "minimum": 0}, "owner": nullable(STR), "name": STR},
        additionalProperties=False,
        description="owner: admins only.",
    ),
    "Pool": obj(
        {
            "strategy": STR,
            "pinned": nullable(STR),
            "strategies": {"type": "array", "items": obj({"name": STR, "help": STR})},
            "accounts": INT,
            "usable": INT,
            "headroom": obj(
                {
                    "accounts": NUM,
                    "percent": nullable(NUM),
                    "primary_percent": nullable(NUM),
                    "secondary_percent": nullable(NUM),
                }
            ),
        }
    ),
    "PoolPatch": obj({"strategy": STR, "pinned": nullable(STR)}, additionalProperties=False),
    "Key": obj(
        {
            "name": STR,
            "prefix": {"type": "string", "description": "the secret's first 12 characters (cgw-…)"},
            "owner": nullable(STR),
            "admin": BOOL,
            "accounts": NAMES,
            "models": NAMES,
            "rpm": nullable(INT),
            "tpm": nullable(INT),
            "tokens_per_day": nullable(INT),
            "max_streams": nullable(INT),
            "expires_at": nullable(EPOCH),
            "reasoning_mode": nullable({"enum": ["content", "think", "hidden"]}),
            "max_effort": nullable({"enum": ["low", "medium", "high", "xhigh"]}),
            "created_at": EPOCH,
            "revoked_at": nullable(EPOCH),
            "last_used_at": nullable(EPOCH),
            "status": {"enum": ["active", "expired", "revoked"]},
        },
        ["name", "prefix", "status"],
    ),
    "KeyWithSecret": {
        "allOf": [ref("Key"), obj({"secret": {"type": "string", "description": "shown once"}}, ["secret"])]
    },
    "KeyFields": obj(
        {
            "name": STR,
            "owner": nullable(STR),
            "admin": BOOL,
            "accounts": NAMES,
            "models": NAMES,
            "rpm": LIMIT,
            "tpm": LIMIT,
            "tokens_per_day": LIMIT,
            "max_streams": LIMIT,
            "expires": nullable(
                {
                    "anyOf": [STR, NUM],
                    "description": "a duration (90s, 30m, 1h, 30d; 0 = never), a date YYYY-MM-DD "
                    "(00:00 UTC), or epoch seconds",
                }
            ),
            "reasoning_mode": nullable({"enum": ["content", "think", "hidden"]}),
            "max_effort": nullable({"enum": ["low", "medium", "high", "xhigh"]}),
        },
        additionalProperties=False,
        description="owner and admin: admins only (a member's keys are their own).",
    ),
    "Rotate": obj({"grace": {"type": "string", "description": "duration the old secret stays valid"}}),
    "User": obj({"name": STR, "role": {"enum": ["admin", "member"]}, "created_at": EPOCH}, ["name", "role"]),
    "UserCreate": obj(
        {"name": STR, "role": {"enum": ["admin", "member"]}, "password": {"type": "string", "minLength": 8}},
        ["name", "password"],
    ),
    "UserPatch": obj(
        {"role": {"enum": ["admin", "member"]}, "password": {"type": "string", "minLength": 8}},
        additionalProperties=False,
    ),
    "Usage": obj(
        {
            "since": EPOCH,
            "by": {"enum": ["hour", "day", "key", "account", "model"]},
            "data": {
                "type": "array",
                "items": obj(
                    {
                        "bucket": {"anyOf": [NUM, STR], "description": "epoch s of the hour/day, or a name"},
                        "requests": INT,
                        "errors": INT,
                        "input_tokens": INT,
                        "cached_tokens": INT,
                        "output_tokens": INT,
                        "reasoning_tokens": INT,
                    }
                ),
            },
        }
    ),
    "Settings": obj(
        {
            "reasoning_mode": {"enum": ["content", "think", "hidden"]},
            "probe_interval_s": {"type": "number", "minimum": 0},
            "default_cooldown_s": {"type": "number", "minimum": 0},
        },
        additionalProperties=False,
    ),
    "AuditEntry": obj(
        {"at": EPOCH, "actor": STR, "action": STR, "target": nullable(STR), "detail": {"type": "object"}}
    ),
    "Session": obj(
        {"user": obj({"name": STR, "role": STR}), "csrf_token": STR, "expires_at": EPOCH},
        ["user", "csrf_token", "expires_at"],
    ),
    "SignIn": obj({"user": STR, "password": STR}, ["user", "password"]),
    "Setup": obj({"token": STR, "user": STR, "password": STR}, ["token", "user", "password"]),
    "LoginStart": obj({"name": STR, "owner": STR}, description="owner: admins only."),
    "Login": obj(
        {
            "id": STR,
            "kind": {"enum": ["device", "pkce"]},
            "status": {"enum": ["pending", "approved", "failed", "expired"]},
            "user_code": STR,
            "verification_uri": STR,
            "expires_in": INT,
            "expires_at": EPOCH,
            "authorize_url": STR,
            "account": STR,
            "error": STR,
            "name": nullable(STR),
            "owner": nullable(STR),
        },
        ["id", "kind", "status"],
    ),
    "Redirect": obj({"url": STR}, ["url"]),
    "ResponsesRequest": obj(
        {
            "model": STR,
            "input": {"anyOf": [STR, {"type": "array"}]},
            "instructions": STR,
            "stream": BOOL,
            "store": BOOL,
            "previous_response_id": STR,
            "reasoning": nullable(obj({"effort": STR, "summary": STR})),
            "tools": {"type": "array"},
        },
        ["model", "input"],
        description="OpenAI's Responses API request (codexgw reads these fields; others pass through).",
    ),
    "ChatRequest": obj(
        {
            "model": STR,
            "messages": {"type": "array"},
            "stream": BOOL,
            "stream_options": obj({"include_usage": BOOL}),
            "reasoning_effort": STR,
            "tools": {"type": "array"},
        },
        ["model", "messages"],
        description="OpenAI's Chat Completions request.",
    ),
    "OpenAIObject": {"type": "object", "description": "an OpenAI API object (Response, ChatCompletion, …)"},
}
