"""Cross-site requests to a loopback gateway, end to end (issue 16 item 3; rules: codexgw/api/edge.py).

A web page the user visits can make the browser send requests to ``127.0.0.1``: simple ones
(``text/plain`` bodies, no preflight) to spend the pool, and, with DNS rebinding (its own name
resolving to 127.0.0.1), read the answers. Each test plays such a request with httpx, setting the
headers a browser would set, against an open (no key) gateway.
"""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.conftest import Env
from tests.wsclient import Rejected, connect

pytestmark = pytest.mark.trio

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "spend the pool"}]}
EVIL = "https://evil.example"


async def start(env: Env, **overrides: object) -> httpx.AsyncClient:
    env.add_account("alice")
    await env.start(**overrides)
    return httpx.AsyncClient(base_url=env.url, timeout=10)


def assert_refused(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert (
        set(error) == {"message", "type", "param", "code"}
        and error["code"] == code
        and error["param"] is None
    )


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/responses/compact"])
async def test_a_text_plain_post_is_refused_before_the_pool(env: Env, path: str) -> None:
    """A page's ``fetch(url, {method: "POST", body: JSON.stringify(...)})`` sends ``text/plain``."""
    async with await start(env) as client:
        r = await client.post(
            path, content=json.dumps(CHAT), headers={"content-type": "text/plain;charset=UTF-8"}
        )
        assert_refused(r, 415, "unsupported_media_type")
        r = await client.post(
            path, content=json.dumps(CHAT), headers={"content-type": "text/plain", "origin": EVIL}
        )
        assert r.status_code in (403, 415)
    assert not [q for q in env.fake.requests if "/codex/responses" in q.path], "nothing reached the upstream"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/chat/completions"), ("POST", "/v1/responses"), ("GET", "/v1/models"), ("GET", "/status"),
     ("GET", "/metrics"), ("GET", "/api/accounts"), ("POST", "/api/login"), ("GET", "/dashboard/")],
)  # fmt: skip
async def test_a_foreign_origin_is_refused_everywhere(env: Env, method: str, path: str) -> None:
    async with await start(env) as client:
        body = json.dumps(CHAT) if method == "POST" else None
        headers = {"origin": EVIL, "content-type": "application/json"}
        assert_refused(
            await client.request(method, path, content=body, headers=headers), 403, "origin_not_allowed"
        )
    assert not [q for q in env.fake.requests if "/codex/responses" in q.path]


async def test_dns_rebinding_cannot_read_status(env: Env) -> None:
    """The page's own name, resolved to 127.0.0.1: same-origin for the browser, so ``Host`` says it."""
    async with await start(env) as client:
        assert "alice@example.com" in (await client.get("/status")).text, (
            "the control: /status has the emails"
        )
        for path in ("/status", "/metrics", "/v1/models", "/api/accounts"):
            r = await client.get(path, headers={"host": "rebind.evil.example:8080"})
            assert_refused(r, 403, "host_not_allowed")
            assert "alice" not in r.text
        r = await client.get(
            "/status", headers={"host": "rebind.evil.example", "origin": "http://rebind.evil.example"}
        )
        assert_refused(r, 403, "host_not_allowed")


async def test_a_server_name_is_served(env: Env) -> None:
    async with await start(env, server_names=("gw.example.com",)) as client:
        r = await client.get("/status", headers={"host": "gw.example.com"})
        assert r.status_code == 200 and "alice@example.com" in r.text
        assert (await client.get("/status", headers={"host": "other.example.com"})).status_code == 403


async def test_same_origin_requests_pass_the_dashboards_own(env: Env) -> None:
    async with await start(env) as client:
        r = await client.post("/v1/chat/completions", json=CHAT, headers={"origin": env.url})
        assert r.status_code == 200, r.text
        assert "access-control-allow-origin" not in r.headers, "same origin needs no CORS"
        assert (await client.get("/api/accounts", headers={"origin": env.url})).status_code == 401, (
            "the login's answer"
        )


async def test_an_allowed_origin_gets_cors_and_its_preflight(env: Env) -> None:
    app = "https://chat.example.com"
    async with await start(env, allow_origins=(app,)) as client:
        pre = await client.options(
            "/v1/chat/completions",
            headers={"origin": app, "access-control-request-method": "POST",
                     "access-control-request-headers": "authorization, content-type, x-stainless-os"},
        )  # fmt: skip
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == app
        assert pre.headers["access-control-allow-headers"] == "authorization, content-type, x-stainless-os"
        assert "POST" in pre.headers["access-control-allow-methods"]
        r = await client.post("/v1/chat/completions", json=CHAT, headers={"origin": app})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == app
        assert "x-request-id" in r.headers["access-control-expose-headers"]
        r = await client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers={"origin": app})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == app
        pre = await client.options(
            "/v1/chat/completions", headers={"origin": EVIL, "access-control-request-method": "POST"}
        )
        assert_refused(pre, 403, "origin_not_allowed")


async def test_the_websocket_upgrade_follows_the_rules(env: Env) -> None:
    await start(env)
    with trio.fail_after(10):
        with pytest.raises(Rejected) as refused:
            await connect(env.url, headers={"origin": EVIL})
        assert (
            refused.value.status == 403
            and json.loads(refused.value.body)["error"]["code"] == "origin_not_allowed"
        )
        socket = await connect(env.url, headers={"origin": env.url})  # same origin: a browser client here
        await socket.drop()
