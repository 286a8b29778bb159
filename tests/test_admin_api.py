"""The admin API under /api (teams contract §4), end to end against a running server and the fake."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
import trio

from tests.conftest import Env, in_thread
from tests.teams_env import PASSWORD, eventually, key, own, store_of, user

pytestmark = pytest.mark.trio


class Client:
    """An httpx client with a session cookie (after :meth:`sign_in`) and its CSRF token."""

    def __init__(self, env: Env, http: httpx.AsyncClient) -> None:
        self.env, self.http, self.csrf = env, http, ""

    async def sign_in(self, name: str, password: str = PASSWORD) -> httpx.Response:
        r = await self.http.post(f"{self.env.url}/api/session", json={"user": name, "password": password})
        if r.status_code == 200:
            self.csrf = r.json()["csrf_token"]
        return r

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"x-csrf-token": self.csrf, **kw.pop("headers", {})}
        return await self.http.request(method, f"{self.env.url}{path}", headers=headers, **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.call("GET", path, **kw)


async def session(env: Env, name: str) -> Client:
    client = Client(env, httpx.AsyncClient(timeout=30))
    assert (await client.sign_in(name)).status_code == 200
    return client


def error_of(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


async def test_setup_token_creates_the_first_admin_once(env: Env) -> None:
    await env.start()
    teams = env.gateway.teams
    token = teams.setup_token()
    assert token is not None
    async with httpx.AsyncClient(timeout=30) as http:
        url = f"{env.url}/api/setup"
        assert error_of(
            await http.post(url, json={"token": "nope", "user": "root", "password": PASSWORD}), 401
        )
        short = await http.post(url, json={"token": token, "user": "root", "password": "short"})
        assert error_of(short, 400)["param"] == "password"
        r = await http.post(url, json={"token": token, "user": "root", "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert r.json()["user"] == {"name": "root", "role": "admin"} and r.json()["csrf_token"]
        cookie = r.headers["set-cookie"]
        assert "codexgw_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Path=/" in cookie and "Secure" not in cookie  # no TLS here
        assert (await http.get(f"{env.url}/api/session")).json()["user"]["name"] == "root"
        again = await http.post(url, json={"token": token, "user": "root2", "password": PASSWORD})
        assert again.status_code == 401  # spent
    assert teams.setup_token() is None  # a user exists: no new token


async def test_sign_in_csrf_sign_out_and_failed_logins_throttled(env: Env) -> None:
    user(env, "root", "admin")
    await env.start()
    async with httpx.AsyncClient(timeout=30) as http:
        client = Client(env, http)
        assert error_of(await client.get("/api/keys"), 401)["code"] == "unauthenticated"
        assert error_of(await client.sign_in("root", "wrong password"), 401)["code"] == "unauthenticated"
        assert error_of(await client.sign_in("ghost", "wrong password"), 401)
        assert (await client.sign_in("root")).status_code == 200
        assert (await client.get("/api/keys")).status_code == 200
        bare = await http.post(f"{env.url}/api/keys", json={"name": "ci"})  # the cookie, no CSRF token
        assert error_of(bare, 403)["code"] == "csrf_failed"
        assert (await client.call("POST", "/api/keys", json={"name": "ci"})).status_code == 201
        assert (await client.call("DELETE", "/api/session")).status_code == 204
        assert error_of(await client.get("/api/keys"), 401)
        for _ in range(5):
            await client.sign_in("root", "wrong password")
        throttled = await client.sign_in("root")  # even the right password, for a while
        assert error_of(throttled, 429) and int(throttled.headers["retry-after"]) > 0
        env.clock.advance(301)
        assert (await client.sign_in("root")).status_code == 200


async def test_admin_keys_authenticate_the_api_and_others_do_not(env: Env) -> None:
    user(env, "root", "admin")
    ops, ci = key(env, "ops", admin=True), key(env, "ci")
    await env.start(api_key="gw-master")
    async with httpx.AsyncClient(timeout=30) as http:
        for secret in (ops, "gw-master"):
            r = await http.get(f"{env.url}/api/users", headers={"authorization": f"Bearer {secret}"})
            assert r.status_code == 200 and [u["name"] for u in r.json()["data"]] == ["root"]
        assert error_of(await http.get(f"{env.url}/api/users", headers={"x-api-key": ci}), 403)
        assert error_of(await http.get(f"{env.url}/api/users", headers={"x-api-key": "cgw-nope"}), 401)
        made = await http.post(
            f"{env.url}/api/users", headers={"x-api-key": ops}, json={"name": "ada", "password": PASSWORD}
        )
        assert made.status_code == 201 and made.json()["role"] == "member"  # a key needs no CSRF token
        audit = (await http.get(f"{env.url}/api/audit", headers={"x-api-key": ops})).json()["data"]
        assert audit[0]["actor"] == "key:ops" and audit[0]["action"] == "user.create"


async def test_a_member_can_neither_read_nor_change_another_members_accounts_or_keys(env: Env) -> None:
    for name in ("ada-acct", "bob-acct", "shared"):
        env.add_account(name)
    user(env, "root", "admin")
    user(env, "ada")
    user(env, "bob")
    own(env, "ada-acct", "ada")
    own(env, "bob-acct", "bob")
    key(env, "bob-ci", owner="bob")
    await env.start()
    ada = await session(env, "ada")
    listed = (await ada.get("/api/accounts")).json()["data"]
    assert [a["name"] for a in listed] == ["ada-acct"] and listed[0]["owner"] == "ada"
    for method, path, body in (
        ("GET", "/api/accounts/bob-acct", None),
        ("PATCH", "/api/accounts/bob-acct", {"enabled": False}),
        ("DELETE", "/api/accounts/bob-acct", None),
        ("POST", "/api/accounts/bob-acct/reset", None),
        ("GET", "/api/accounts/shared", None),
        ("GET", "/api/keys/bob-ci", None),
        ("PATCH", "/api/keys/bob-ci", {"rpm": 1}),
        ("DELETE", "/api/keys/bob-ci", None),
        ("POST", "/api/keys/bob-ci/rotate", {}),
        ("GET", "/api/keys/bob-ci/usage", None),
    ):
        assert error_of(await ada.call(method, path, json=body), 404)["code"] == "not_found", (method, path)
    assert (
        error_of(await ada.call("PATCH", "/api/accounts/ada-acct", json={"owner": "bob"}), 403)["param"]
        == "owner"
    )
    assert (
        error_of(await ada.call("POST", "/api/keys", json={"name": "x", "owner": "bob"}), 403)["param"]
        == "owner"
    )
    assert (
        error_of(await ada.call("POST", "/api/keys", json={"name": "x", "admin": True}), 403)["param"]
        == "admin"
    )
    assert (
        error_of(await ada.call("POST", "/api/keys", json={"name": "x", "accounts": ["bob-acct"]}), 400)[
            "param"
        ]
        == "accounts"
    )
    for path in ("/api/users", "/api/settings"):
        assert error_of(await ada.get(path), 403)
    assert error_of(await ada.call("PATCH", "/api/pool", json={"strategy": "random"}), 403)
    made = await ada.call("POST", "/api/keys", json={"name": "ada-ci", "accounts": ["ada-acct"], "rpm": 10})
    assert (
        made.status_code == 201 and made.json()["owner"] == "ada" and made.json()["secret"].startswith("cgw-")
    )
    assert [k["name"] for k in (await ada.get("/api/keys")).json()["data"]] == ["ada-ci"]
    changed = await ada.call("PATCH", "/api/accounts/ada-acct", json={"weight": 2, "enabled": True})
    assert changed.status_code == 200 and changed.json()["weight"] == 2
    assert (await ada.get("/api/pool")).json()["accounts"] == 1  # her accounts only
    audit = (await ada.get("/api/audit")).json()["data"]
    assert {e["actor"] for e in audit} == {"ada"}
    bob_key = (await (await session(env, "root")).get("/api/keys/bob-ci")).json()
    assert bob_key["rpm"] is None and bob_key["status"] == "active"  # unchanged by ada's attempts
    assert store_of(env).get_account("bob-acct").enabled  # type: ignore[union-attr]


async def test_keys_made_through_the_api_are_in_force_at_once(env: Env) -> None:
    env.add_account("alice")
    user(env, "root", "admin")
    await env.start()
    root = await session(env, "root")
    made = await root.call(
        "POST", "/api/keys", json={"name": "ci", "rpm": 5, "models": ["gpt-5.5"], "expires": "30d"}
    )
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    shown = (await root.get("/api/keys/ci")).json()
    assert "secret" not in shown and shown["prefix"] == secret[:12] and shown["expires_at"] > env.clock.now
    client = env.openai(api_key=secret)
    raw = await in_thread(
        client.chat.completions.with_raw_response.create,
        model="gpt-5.5",
        messages=[{"role": "user", "content": "hi"}],
    )
    assert raw.headers["x-ratelimit-remaining-requests"] == "4"
    dup = await root.call("POST", "/api/keys", json={"name": "ci"})
    assert error_of(dup, 409)["code"] == "conflict"
    assert (
        error_of(await root.call("POST", "/api/keys", json={"name": "x", "rpm": -3}), 400)["param"] == "rpm"
    )
    assert error_of(await root.call("POST", "/api/keys", json={"rpm": 3}), 400)["param"] == "name"
    assert (
        error_of(await root.call("PATCH", "/api/keys/ci", json={"colour": "red"}), 400)["param"] == "colour"
    )
    rotated = await root.call("POST", "/api/keys/ci/rotate", json={"grace": "1h"})
    new_secret = rotated.json()["secret"]
    assert new_secret != secret and rotated.json()["prefix"] == new_secret[:12]
    assert await in_thread(env.openai(api_key=new_secret).models.list)
    assert await in_thread(client.models.list)  # the old one, in its grace period
    assert (await root.call("DELETE", "/api/keys/ci")).status_code == 204
    with pytest.raises(openai.AuthenticationError):
        await in_thread(env.openai(api_key=new_secret).models.list)
    assert (await root.get("/api/keys/ci")).json()["status"] == "revoked"
    usage = (await root.get("/api/keys/ci/usage?by=model")).json()
    assert usage["by"] == "model" and usage["data"][0]["requests"] == 1
    assert error_of(await root.get("/api/usage?by=week"), 400)["param"] == "by"
    entries = (await root.get("/api/audit")).json()["data"]
    assert [e["action"] for e in entries][:3] == ["key.revoke", "key.rotate", "key.create"]
    assert secret not in str(entries) and new_secret not in str(entries)


async def test_users_settings_and_the_pool(env: Env) -> None:
    env.add_account("alice")
    env.add_account("bob")
    user(env, "root", "admin")
    await env.start()
    root = await session(env, "root")
    assert (
        await root.call("POST", "/api/users", json={"name": "ada", "role": "member", "password": PASSWORD})
    ).status_code == 201
    assert error_of(await root.call("POST", "/api/users", json={"name": "ada", "password": PASSWORD}), 409)
    assert (
        error_of(
            await root.call("POST", "/api/users", json={"name": "eve", "role": "god", "password": PASSWORD}),
            400,
        )["param"]
        == "role"
    )
    assert (await root.call("PATCH", "/api/users/ada", json={"role": "admin"})).json()["role"] == "admin"
    assert error_of(await root.call("PATCH", "/api/users/nobody", json={"role": "admin"}), 404)
    assert (await root.call("DELETE", "/api/users/ada")).status_code == 204
    assert error_of(await root.call("DELETE", "/api/users/root"), 409)  # the last admin
    settings = await root.call(
        "PATCH", "/api/settings", json={"reasoning_mode": "hidden", "default_cooldown_s": 30}
    )
    assert settings.json() == {
        "reasoning_mode": "hidden",
        "probe_interval_s": 300.0,
        "default_cooldown_s": 30.0,
    }
    assert env.gateway.settings.reasoning_mode == "hidden"
    assert (
        error_of(await root.call("PATCH", "/api/settings", json={"reasoning_mode": "loud"}), 400)["param"]
        == "reasoning_mode"
    )
    pool = (await root.call("PATCH", "/api/pool", json={"strategy": "least-used", "pinned": "bob"})).json()
    assert pool["strategy"] == "least-used" and pool["pinned"] == "bob" and pool["accounts"] == 2
    assert {s["name"] for s in pool["strategies"]} >= {"round-robin", "quota"}
    assert env.gateway.pool.strategy_name == "least-used"
    assert (
        error_of(await root.call("PATCH", "/api/pool", json={"pinned": "nobody"}), 400)["param"] == "pinned"
    )
    assert (await root.call("PATCH", "/api/pool", json={"pinned": None})).json()["pinned"] is None
    renamed = await root.call("PATCH", "/api/accounts/alice", json={"name": "alice2", "weight": 0.5})
    assert renamed.json()["name"] == "alice2" and renamed.json()["weight"] == 0.5
    assert error_of(await root.call("PATCH", "/api/accounts/alice2", json={"name": "bob"}), 409)
    assert (
        error_of(await root.call("PATCH", "/api/accounts/alice2", json={"weight": -1}), 400)["param"]
        == "weight"
    )
    env.gateway.pool.cool_down(next(iter(env.gateway.accounts)), until=env.clock.now + 99, reason="x")
    assert (await root.call("POST", "/api/accounts/alice2/reset")).json()["cooldown"] is None


async def test_a_device_login_started_by_a_member_ends_with_an_account_she_owns(env: Env) -> None:
    user(env, "ada")
    user(env, "root", "admin")
    await env.start()
    ada = await session(env, "ada")
    fake_account = env.fake.add_account(email="ada-work@example.com")
    started = await ada.call("POST", "/api/logins/device", json={"name": "ada-work"})
    assert started.status_code == 201, started.text
    login = started.json()
    assert login["kind"] == "device" and login["status"] == "pending" and login["user_code"]
    assert login["verification_uri"].startswith(env.fake_url) and 0 < login["expires_in"] <= 900
    root = await session(env, "root")
    assert error_of(await (await session(env, "root")).get("/api/logins/nope"), 404)
    env.fake.approve_device(login["user_code"], fake_account)

    async def approved() -> bool:
        return (await ada.get(f"/api/logins/{login['id']}")).json()["status"] == "approved"

    await eventually(approved, within_s=10)
    assert (await ada.get(f"/api/logins/{login['id']}")).json()["account"] == "ada-work"
    accounts = (await ada.get("/api/accounts")).json()["data"]
    assert [(a["name"], a["owner"]) for a in accounts] == [("ada-work", "ada")]
    assert (await root.get(f"/api/logins/{login['id']}")).status_code == 200  # an admin sees it
    other = Client(env, httpx.AsyncClient(timeout=30))
    user(env, "bob")
    await other.sign_in("bob")
    assert error_of(await other.get(f"/api/logins/{login['id']}"), 404)


async def test_a_browser_login_through_the_api_with_the_pasted_redirect(env: Env) -> None:
    env.fake.redirect_ports = None
    user(env, "root", "admin")
    await env.start(login_callback_port=0)
    root = await session(env, "root")
    env.fake.add_account(email="shared@example.com")
    started = await root.call("POST", "/api/logins/pkce", json={})
    assert started.status_code == 201, started.text
    login = started.json()
    assert login["kind"] == "pkce" and "/oauth/authorize?" in login["authorize_url"]
    assert error_of(await root.call("POST", "/api/logins/pkce", json={}), 409)  # one waits already
    async with httpx.AsyncClient() as browser:
        redirect = (await browser.get(login["authorize_url"])).headers["location"]
    done = await root.call("POST", f"/api/logins/{login['id']}/redirect", json={"url": redirect})
    assert done.json()["status"] == "approved", done.text
    [account] = (await root.get("/api/accounts")).json()["data"]
    assert account["owner"] is None  # an admin's login: the shared pool


async def test_events_stream_what_happens_and_members_see_only_theirs(env: Env) -> None:
    env.add_account("ada-acct")
    user(env, "root", "admin")
    user(env, "ada")
    own(env, "ada-acct", "ada")
    secret = key(env, "root-ci")
    await env.start()
    root, ada = await session(env, "root"), await session(env, "ada")
    assert not env.gateway.teams.events.listening
    seen: dict[str, list[str]] = {"root": [], "ada": []}

    async def listen(
        client: Client, who: str, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with client.http.stream("GET", f"{env.url}/api/events") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            task_status.started()
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    seen[who].append(line[7:])

    async with trio.open_nursery() as nursery:
        await nursery.start(listen, root, "root")
        await nursery.start(listen, ada, "ada")
        await eventually(lambda: len(env.gateway.teams.events._subs) == 2)
        await in_thread(lambda: env.openai(api_key=secret).models.list())
        await root.call("POST", "/api/keys", json={"name": "other"})
        await ada.call("POST", "/api/keys", json={"name": "ada-ci"})
        await eventually(lambda: seen["root"].count("key") == 2 and "request" in seen["root"])
        await eventually(lambda: "key" in seen["ada"])
        gw = env.gateway
        (account_id,) = gw.accounts
        gw.pool.cool_down(account_id, until=env.clock.now + 600, reason="rate_limited")  # the watcher sees it
        await eventually(lambda: "account" in seen["ada"] and "account" in seen["root"])
        nursery.cancel_scope.cancel()
    assert seen["ada"].count("key") == 1  # her own key only, not root's
    await eventually(lambda: not env.gateway.teams.events.listening)
