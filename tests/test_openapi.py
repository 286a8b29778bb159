"""The OpenAPI 3.1 document (``GET /api/openapi.json``): well formed, and naming every route the app serves."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from codexgw.api import chat, responses
from codexgw.api.app import create_quart_app
from codexgw.api.manage.openapi import document
from codexgw.config import Settings
from tests.conftest import Env

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


def refs(node: Any) -> list[str]:
    """Every ``$ref`` in ``node``."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def schemas(node: Any) -> list[dict[str, Any]]:
    """Every object with a ``type`` key under a ``schema``/``schemas``/``properties``/``items``."""
    out = []
    if isinstance(node, dict):
        if "type" in node and not isinstance(node.get("type"), dict):
            out.append(node)
        for v in node.values():
            out += schemas(v)
    elif isinstance(node, list):
        for v in node:
            out += schemas(v)
    return out


def test_the_document_is_well_formed_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] and doc["info"]["version"]
    components = doc["components"]
    for target in refs(doc):
        assert target.startswith("#/components/schemas/"), target
        assert target.rsplit("/", 1)[1] in components["schemas"], f"{target} does not resolve"
    for schema in schemas(components["schemas"]):
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert set(kinds) <= TYPES, schema
    schemes = set(components["securitySchemes"])
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        operations = {m: op for m, op in item.items() if m in METHODS}
        assert operations, path
        for method, op in operations.items():
            names = declared | {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), (path, method)
            assert op["summary"] and op["responses"], (path, method)
            upgrade = "101" in op["responses"]  # the WebSocket transport
            assert upgrade or any(code.startswith("2") for code in op["responses"]), (path, method)
            for code, answer in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", code) and answer["description"], (path, method, code)
            for requirement in op.get("security", doc["security"]):
                assert set(requirement) <= schemes


def test_the_document_validates_with_openapi_spec_validator() -> None:
    """The full OpenAPI 3.1 validation, where the validator is installed (the structural test
    above always runs)."""
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document())


def _rules() -> set[tuple[str, str]]:
    """``(method, path template)`` of every route the app serves: Quart's rules plus the hot routes."""
    gw = SimpleNamespace(settings=Settings(), clock=lambda: 0.0)
    app = create_quart_app(gw)  # type: ignore[arg-type]
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
        if getattr(rule, "websocket", False):
            methods = {"get"}  # a WebSocket upgrade
        served |= {(m, path) for m in methods}
    served |= {("post", p) for p in (*chat.PATHS, *responses.PATHS)}
    served |= {("get", p) for p in responses.PATHS}  # the Responses WebSocket (an upgrade request)
    return served


def _shape(path: str) -> str:
    return re.sub(r"{\w+}", "{}", path)


def test_every_route_the_app_serves_is_in_the_document() -> None:
    documented = {(m, _shape(p)) for p, item in document()["paths"].items() for m in item if m in METHODS}
    served = {(m, _shape(p)) for m, p in _rules()}
    assert len(served) > 40
    missing = sorted(served - documented)
    assert not missing, f"routes missing from the OpenAPI document: {missing}"
    extra = sorted(documented - served)
    assert not extra, f"documented routes the app does not serve: {extra}"


@pytest.mark.trio
async def test_the_document_is_served_without_authentication(env: Env) -> None:
    env.add_account("alice")
    await env.start(api_key="gw-secret")
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.get(f"{env.url}/api/openapi.json")
    assert r.status_code == 200 and r.json()["openapi"] == "3.1.0"
    assert "gw-secret" not in r.text
