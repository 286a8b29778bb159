"""Account health: what an upstream refusal says about the account (``pool/health.py``), end to end.

401 after a refresh → ``needs_login``; a deactivated 403 → ``suspended``; a Cloudflare 403 → a short
backoff and back; ``usage_not_included`` → ``plan_unsupported``. Each change is stored, shown in
``/status`` and logged once with its reason, and the request moves to another account.
"""

from __future__ import annotations

import logging

import httpx
import pytest
import trio

from codexgw.pool.health import CLOUDFLARE_BACKOFF_S, health_verdict
from tests.conftest import Env
from tests.fakes import Forbidden, Text, Unauthorized, UsageNotIncluded

TIMEOUT = httpx.Timeout(30.0)
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
CLOUDFLARE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
    b"<body>Sorry, you have been blocked</body></html>"
)


# ---------------------------------------------------------------------------------------- unit


@pytest.mark.parametrize(
    ("status", "content", "refreshed", "expected"),
    [
        (401, b'{"error":{"code":"token_expired"}}', True, "needs_login"),
        (401, b'{"error":{"code":"token_expired"}}', False, None),
        (403, b'{"error":{"code":"account_deactivated","message":"x"}}', False, "suspended"),
        (403, b'{"detail":"Your account has been deactivated"}', False, "suspended"),
        (429, b'{"error":{"type":"usage_not_included","plan_type":"free"}}', False, "plan_unsupported"),
        (403, b'{"error":{"code":"usage_not_included"}}', False, "plan_unsupported"),
        (403, CLOUDFLARE_PAGE, False, "backoff"),
        (403, b"<html>Forbidden</html>", False, None),
        (403, b'{"error":{"message":"unsupported_country_region_territory"}}', False, None),
        (429, b'{"error":{"type":"usage_limit_reached"}}', False, None),
        (500, CLOUDFLARE_PAGE, False, None),
    ],
)
def test_health_verdict(status: int, content: bytes, refreshed: bool, expected: str | None) -> None:
    from codexgw.translate.classify import parse_json_body

    verdict = health_verdict(status, content, parse_json_body(content), refreshed=refreshed)
    if expected is None:
        assert verdict is None
    elif expected == "backoff":
        assert verdict is not None and verdict.status is None and verdict.backoff_s == CLOUDFLARE_BACKOFF_S
    else:
        assert verdict is not None and verdict.status == expected and verdict.reason


# ---------------------------------------------------------------------------------------- e2e


def served_by(env: Env) -> list[str]:
    names = {a.chatgpt_account_id: a.email.split("@")[0] for a in env.fake.accounts}
    return [names[r.headers["chatgpt-account-id"]] for r in env.fake.responses_requests()]


async def post(env: Env, body: dict = CHAT) -> httpx.Response:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        return await client.post(f"{env.url}/v1/chat/completions", json=body)


async def stored_status(env: Env, name: str, expected: str) -> str | None:
    """Wait for the background store write; return the stored reason."""
    with trio.fail_after(5):
        while (account := env.gateway.store.get_account(name)).status != expected:
            await trio.sleep(0.01)
    return account.status_reason


async def status_row(env: Env, name: str) -> dict:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        doc = (await client.get(f"{env.url}/status")).json()
    return next(r for r in doc["accounts"] if r["name"] == name)


def changes(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"account {name} is now")]


async def test_401_after_a_refresh_marks_needs_login(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    """The backend refuses alice's token, refreshes it, and refuses again: her login is gone."""
    caplog.set_level(logging.INFO)
    alice = env.add_account("alice")
    env.add_account("bob")
    env.fake.script(alice, Unauthorized(), Unauthorized())
    await env.start()
    r = await post(env)
    assert r.status_code == 200
    assert served_by(env) == ["alice", "alice", "bob"]
    assert alice.refresh_count == 1
    reason = await stored_status(env, "alice", "needs_login")
    assert "401" in (reason or "")
    row = await status_row(env, "alice")
    assert (row["status"], row["usable"]) == ("needs_login", False)
    for _ in range(2):
        assert (await post(env)).status_code == 200
    assert served_by(env)[-2:] == ["bob", "bob"]
    assert len(changes(caplog, "alice")) == 1


async def test_deactivated_403_marks_suspended(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    alice = env.add_account("alice")
    env.add_account("bob")
    env.fake.script(alice, Forbidden("deactivated"))
    await env.start()
    assert (await post(env)).status_code == 200
    assert served_by(env) == ["alice", "bob"]
    assert "deactivated" in (await stored_status(env, "alice", "suspended") or "")
    assert (await post(env)).status_code == 200
    assert served_by(env)[-1] == "bob"
    [line] = changes(caplog, "alice")
    assert "suspended" in line and "deactivated" in line


async def test_cloudflare_403_is_a_short_backoff_not_a_ban(env: Env) -> None:
    alice = env.add_account("alice")
    env.add_account("bob")
    env.fake.script(alice, Forbidden("cloudflare"))
    await env.start()
    assert (await post(env)).status_code == 200
    assert served_by(env) == ["alice", "bob"]
    row = await status_row(env, "alice")
    assert row["status"] == "active"
    assert row["cooldown"]["reason"] == "cloudflare"
    assert abs(row["cooldown"]["in_s"] - CLOUDFLARE_BACKOFF_S) <= 1
    assert env.gateway.store.get_account("alice").status == "active"
    env.clock.advance(CLOUDFLARE_BACKOFF_S + 1)
    for topic in ("tea", "coffee"):  # round-robin: alice serves again
        body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": topic}]}
        assert (await post(env, body)).status_code == 200
    assert "alice" in served_by(env)[2:]


async def test_usage_not_included_marks_plan_unsupported(env: Env) -> None:
    """A plan without Codex is taken out of rotation; with no other account the client sees the 429."""
    alice = env.add_account("alice", plan_type="free")
    await env.start()
    env.fake.script(alice, UsageNotIncluded())
    r = await post(env)
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "usage_not_included"
    assert "usage_not_included" in (await stored_status(env, "alice", "plan_unsupported") or "")
    r2 = await post(env)
    assert r2.status_code == 503  # no eligible account left: not retried upstream
    assert len(served_by(env)) == 1


async def test_a_new_login_or_refresh_brings_a_suspended_account_back(env: Env) -> None:
    """Health states end with the next successful refresh (store.save_tokens sets ``active``)."""
    alice = env.add_account("alice")
    env.fake.script(alice, Forbidden("deactivated"), Text("back"))
    await env.start()
    assert (await post(env)).status_code == 502
    await stored_status(env, "alice", "suspended")
    gw = env.gateway
    account = next(iter(gw.accounts.values()))
    await gw.refresh(account)
    with trio.fail_after(5):
        while next(iter(gw.accounts.values())).status != "active":
            await trio.sleep(0.01)
    r = await post(env)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "back"
