"""Quota probing: ``GET /wham/usage`` per account (codex-protocol.md §6.1), in the server and from the CLI.

A probe feeds ``Pool.record_quota``: a window that reset ends a quota cooldown early; a limit still
in force keeps it. ``codexgw accounts usage`` asks the endpoint directly with the store's tokens.
"""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from click.testing import CliRunner, Result

from codexgw.cli.main import main
from codexgw.store import Store
from codexgw.upstream.prober import ProbeFailed
from tests.conftest import Env, in_thread
from tests.fakes import FakeUpstream, UsageLimit

TIMEOUT = httpx.Timeout(30.0)
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}


def usage_requests(fake: FakeUpstream) -> list:
    return [r for r in fake.requests if r.path == "/backend-api/wham/usage"]


def account_id(env: Env, name: str) -> int:
    return next(i for i, a in env.gateway.accounts.items() if a.name == name)


def cli(env: Env, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(env.store_dir), *args], catch_exceptions=False)


async def test_probe_showing_reset_ends_a_quota_cooldown_early(env: Env) -> None:
    """alice hits her limit (reset in an hour); a probe while still limited keeps her out; once the
    fake says the window reset, the next probe brings her back long before the stated reset."""
    alice = env.add_account("alice")
    env.add_account("bob")
    env.fake.script(alice, UsageLimit(resets_in_s=3600))
    await env.start()
    gw = env.gateway
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        assert (await client.post(f"{env.url}/v1/chat/completions", json=CHAT)).status_code == 200
    alice_id = account_id(env, "alice")
    assert gw.pool.cooldown_of(alice_id, now=env.clock.now) is not None

    env.clock.advance(5)
    snapshot = await gw.prober.probe(alice_id)
    assert snapshot.limit_reached
    until, reason = gw.pool.cooldown_of(alice_id, now=env.clock.now)
    assert reason == "usage_limit" and until > env.clock.now + 3000

    env.fake.clear_usage_limit(alice)
    env.clock.advance(5)
    snapshot = await gw.prober.probe(alice_id)
    assert snapshot.shows_headroom and snapshot.plan_type == "plus"
    assert gw.pool.cooldown_of(alice_id, now=env.clock.now) is None
    assert gw.pool.is_usable(alice_id, now=env.clock.now)
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        status = (await client.get(f"{env.url}/status")).json()
    row = next(r for r in status["accounts"] if r["name"] == "alice")
    assert row["usable"] and row["cooldown"] is None
    assert (
        row["quota"]["primary"]["used_percent"] == 0 and row["quota"]["secondary"]["window_minutes"] == 10080
    )


async def test_probe_sends_the_usage_client_headers(env: Env) -> None:
    """§6.1: Codex User-Agent, bearer token, ChatGPT-Account-ID; no originator, no version."""
    alice = env.add_account("alice")
    await env.start()
    await env.gateway.prober.probe(account_id(env, "alice"))
    [request] = usage_requests(env.fake)
    assert request.method == "GET"
    assert request.headers["authorization"] == f"Bearer {alice.access_token}"
    assert request.headers["chatgpt-account-id"] == alice.chatgpt_account_id
    assert request.headers["user-agent"].startswith("codex_cli_rs/")
    assert "originator" not in request.headers and "version" not in request.headers


async def test_probe_refreshes_a_refused_token_once(env: Env) -> None:
    alice = env.add_account("alice")
    await env.start()
    env.fake.expire_access_token(alice)
    snapshot = await env.gateway.prober.probe(account_id(env, "alice"))
    assert snapshot.primary is not None
    assert alice.refresh_count == 1
    assert [r.headers["authorization"][-8:] for r in usage_requests(env.fake)][-1] == alice.access_token[-8:]


async def test_probe_failure_is_reported_not_raised_into_the_pool(env: Env) -> None:
    alice = env.add_account("alice")
    await env.start()
    env.fake.expire_access_token(alice)
    env.fake.fail_next_refresh(500, {"error": "boom"})
    with pytest.raises(ProbeFailed, match="could not refresh"):
        await env.gateway.prober.probe(account_id(env, "alice"))
    results = await env.gateway.prober.probe_all()
    assert set(results) == {"alice"}


async def test_the_probe_loop_covers_every_account(env: Env) -> None:
    """With a short interval the background prober probes each account and fills the pool's quota."""
    for name in ("alice", "bob", "carol"):
        env.add_account(name)
    await env.start(probe_interval_s=0.3)
    gw = env.gateway
    with trio.fail_after(10):
        await env.fake.wait_for(
            lambda: (
                {r.account_id for r in usage_requests(env.fake)}
                == {a.chatgpt_account_id for a in env.fake.accounts}
            )
        )
    await trio.testing.wait_all_tasks_blocked()
    assert all(row["quota"] is not None for row in gw.pool.snapshot(env.clock.now))


async def test_interval_zero_disables_probing(env: Env) -> None:
    env.add_account("alice")
    await env.start(probe_interval_s=0)
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        assert (await client.post(f"{env.url}/v1/chat/completions", json=CHAT)).status_code == 200
    assert usage_requests(env.fake) == []


async def test_accounts_usage_cli_without_a_server(env: Env) -> None:
    """``codexgw accounts usage`` calls /wham/usage with the store's tokens (refreshing a refused
    one) and prints the windows; no server runs, no token is printed."""
    alice = env.add_account("alice")
    bob = env.add_account("bob", plan_type="pro")
    env.fake.expire_access_token(bob)
    urls = ("--upstream", f"{env.fake_url}/backend-api", "--auth-url", env.fake_url)
    result = await in_thread(cli, env, "accounts", "usage", "--json", *urls)
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == {"alice", "bob"}
    assert rows["alice"]["primary"]["window_minutes"] == 300
    assert rows["alice"]["primary"]["used_percent"] == 12
    assert rows["bob"]["plan_type"] == "pro" and rows["bob"]["secondary"]["window_minutes"] == 10080
    assert bob.refresh_count == 1
    assert env.fake.accounts[1].access_token == bob.access_token

    text = await in_thread(cli, env, "accounts", "usage", "alice", *urls)
    assert text.exit_code == 0
    assert (
        "alice (plus)" in text.output and "5h" in text.output and "7d" in text.output and "12%" in text.output
    )
    for token in (*env.fake._access, *env.fake._refresh, *env.fake._id_tokens):
        assert token not in result.output and token not in text.output
    assert alice.refresh_count == 0
    missing = await in_thread(cli, env, "accounts", "usage", "nobody", *urls)
    assert missing.exit_code == 1 and "no account named" in missing.output


async def test_accounts_usage_records_a_lost_login(env: Env) -> None:
    """A permanent refusal while ``accounts usage`` refreshes is recorded as ``needs_login`` by the
    command (the refresher writes no status); the account is skipped afterwards."""
    alice = env.add_account("alice")
    env.fake.expire_access_token(alice)
    env.fake.fail_next_refresh(401, {"error": {"code": "refresh_token_reused", "message": "used"}})
    urls = ("--upstream", f"{env.fake_url}/backend-api", "--auth-url", env.fake_url)
    result = await in_thread(cli, env, "accounts", "usage", "--json", *urls)
    assert result.exit_code == 1
    rows = json.loads(result.output)
    assert rows[0]["error"] == "could not refresh the login: the refresh token was already used; log in again"
    stored = Store.open(env.store_dir).get_account("alice")
    assert stored is not None
    assert (stored.status, stored.status_reason) == ("needs_login", "refresh failed: refresh_token_reused")
    again = await in_thread(cli, env, "accounts", "usage", *urls)
    assert again.exit_code == 1 and "no enabled accounts" in again.output


async def test_accounts_usage_and_status_agree_about_a_running_server(env: Env) -> None:
    """``accounts usage`` reads the backend directly; a running server takes its readings in (as it
    takes its own probes), so ``status`` never contradicts it: a reset window seen by ``usage``
    ends the server's usage-limit cooldown, a limit seen by ``usage`` starts one."""
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    env.fake.script(alice, UsageLimit(resets_in_s=3600))
    await env.start(probe_interval_s=0)
    gw = env.gateway
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        assert (await client.post(f"{env.url}/v1/chat/completions", json=CHAT)).status_code == 200
    alice_id, bob_id = account_id(env, "alice"), account_id(env, "bob")
    assert not gw.pool.is_usable(alice_id, now=env.clock.now)

    env.fake.clear_usage_limit(alice)
    bob.limited_until, bob.primary_used_percent = env.clock.now + 1800, 100.0  # bob reaches his limit
    urls = ("--upstream", f"{env.fake_url}/backend-api", "--auth-url", env.fake_url)
    usage = await in_thread(cli, env, "accounts", "usage", "--json", *urls)
    assert usage.exit_code == 0, usage.output
    rows = {r["name"]: r for r in json.loads(usage.output)}
    assert not rows["alice"]["limit_reached"] and rows["bob"]["limit_reached"]
    with trio.fail_after(5):
        while not gw.pool.is_usable(alice_id, now=env.clock.now) or gw.pool.is_usable(
            bob_id, now=env.clock.now
        ):
            await trio.sleep(0.01)
    shown = await in_thread(cli, env, "status", "--url", env.url, "--json")
    status = {r["name"]: r for r in json.loads(shown.output)["accounts"]}
    assert status["alice"]["usable"] and status["alice"]["cooldown"] is None
    assert status["alice"]["quota"]["primary"]["used_percent"] == rows["alice"]["primary"]["used_percent"]
    assert status["bob"]["quota"]["observed_at"] == rows["bob"]["observed_at"]
    assert status["bob"]["cooldown"]["reason"] == "usage_limit" and not status["bob"]["usable"]
    # A reset after that reading ends bob's cooldown, and later store changes do not bring it back.
    assert (await in_thread(cli, env, "accounts", "reset", "bob")).exit_code == 0
    with trio.fail_after(5):
        while not gw.pool.is_usable(bob_id, now=env.clock.now):
            await trio.sleep(0.01)
    assert (await in_thread(cli, env, "accounts", "strategy", "least-used")).exit_code == 0
    with trio.fail_after(5):
        while gw.pool.strategy_name != "least-used":
            await trio.sleep(0.01)
    assert gw.pool.is_usable(bob_id, now=env.clock.now)
