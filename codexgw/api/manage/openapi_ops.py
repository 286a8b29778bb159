"""The building blocks of the OpenAPI document (:mod:`codexgw.api.manage.openapi`): operations,
parameters, the admin API's error answers."""

from __future__ import annotations

from typing import Any

from codexgw.api.manage.schemas import ref

__all__ = [
    "ERRORS",
    "JSON",
    "KEY_AUTH",
    "OPEN",
    "USAGE_QUERY",
    "data_of",
    "errors_of",
    "op",
    "path_param",
    "query",
]

JSON = "application/json"
ERRORS = {
    "400": "a bad field (named in error.param)",
    "401": "no session or admin key (code unauthenticated), or a bad API key (invalid_api_key)",
    "403": "forbidden: an admin's resource or field (users, settings, the pool, owner, admin), a key "
    "that is not an admin key, or csrf_failed",
    "404": "no such thing, or another member's (a member never learns it exists)",
    "409": "conflict: the name is taken, or the change is refused (the last admin …)",
    "429": "too many failed sign-ins (Retry-After)",
    "502": "the upstream failed (a refresh, a quota probe, the device code)",
}


def errors_of(codes: dict[str, str], only: tuple[str, ...] | None = None) -> dict[str, Any]:
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
        "responses": {ok: answer, **errors_of(ERRORS, errors)},
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
