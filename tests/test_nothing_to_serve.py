"""A pool that cannot serve says so: start-up warnings, ``/health`` degraded, 503s naming the fix;
cooldowns that end (by themselves, by a probe, by ``accounts reset``) log one line each."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio
from click.testing import CliRunner, Result

from codexgw import __version__
from codexgw.cli.main import main
from codexgw.pool.quota import QuotaSnapshot, Window
from codexgw.pool.scheduler import AccountView, Pool
from tests.conftest import Env, in_thread
from tests.fakes import UsageLimit

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}


def cli(env: Env, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(env.store_dir), *args])


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():  # type: ignore[operator]
            await trio.sleep(0.01)


async def test_an_empty_pool_warns_reports_degraded_and_names_the_fix(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await env.start()
    [start] = [r.getMessage() for r in caplog.records if "serving on" in r.getMessage()]
    assert start.startswith(f"codexgw {__version__} serving on http://127.0.0.1:")
    assert f"upstream {env.fake_url}/backend-api" in start
    assert "strategy round-robin" in start and "no API key (loopback only)" in start
    assert start.endswith("0 accounts, 0 usable")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "no account to serve with" in w and "login pkce" in w and "accounts import" in w for w in warnings
    )
    async with httpx.AsyncClient(timeout=30) as client:
        health = await client.get(f"{env.url}/health")
        assert health.status_code == 503
        assert health.json() == {
            "status": "degraded",
            "version": __version__,
            "accounts": 0,
            "usable_accounts": 0,
        }
        r = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
    assert r.status_code == 503
    message = r.json()["error"]["message"]
    assert "login pkce" in message and "accounts import" in message


async def test_health_is_ok_while_an_account_can_serve_and_degraded_while_all_cool(env: Env) -> None:
    env.add_account("alice")
    await env.start(api_key="k")
    gw = env.gateway
    (account_id,) = gw.accounts
    async with httpx.AsyncClient(timeout=30) as client:
        ok = await client.get(f"{env.url}/health")  # open without the key
        assert ok.status_code == 200
        assert ok.json() == {"status": "ok", "version": __version__, "accounts": 1, "usable_accounts": 1}
        gw.pool.cool_down(account_id, until=env.clock.now + 60, reason="usage_limit")
        cooling = await client.get(f"{env.url}/health")
    assert cooling.status_code == 503 and cooling.json()["status"] == "degraded"


async def test_accounts_reset_clears_a_cooldown_in_a_running_server(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """The cooldown lives in the server's memory: ``accounts reset`` reaches it through the store."""
    caplog.set_level(logging.INFO)
    alice = env.add_account("alice")
    env.add_account("bob")
    env.fake.script(alice, UsageLimit(resets_in_s=3600))
    await env.start()
    gw = env.gateway
    alice_id = next(i for i, a in gw.accounts.items() if a.name == "alice")
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.post(f"{env.url}/v1/chat/completions", json=CHAT)).status_code == 200
    assert not gw.pool.is_usable(alice_id, now=env.clock.now)
    result = await in_thread(cli, env, "accounts", "reset", "alice")
    assert result.exit_code == 0, result.output
    assert result.stdout == "reset alice: a running server ends its cooldown within a second\n"
    await wait_until(lambda: gw.pool.is_usable(alice_id, now=env.clock.now))
    await wait_until(lambda: any("account alice is usable again" in r.getMessage() for r in caplog.records))
    [line] = [r.getMessage() for r in caplog.records if "account alice is usable again" in r.getMessage()]
    assert (
        line
        == "account alice is usable again: `accounts reset` cleared it (it was cooling down: usage_limit)"
    )


async def test_enable_of_an_enabled_account_also_clears_its_cooldown(env: Env) -> None:
    env.add_account("alice")
    await env.start()
    gw = env.gateway
    (alice_id,) = gw.accounts
    gw.pool.cool_down(alice_id, until=env.clock.now + 600, reason="rate_limited", now=env.clock.now - 1)
    result = await in_thread(cli, env, "accounts", "enable", "alice")
    assert result.exit_code == 0 and result.stdout == "enabled alice\n"
    await wait_until(lambda: gw.pool.is_usable(alice_id, now=env.clock.now))


async def test_reset_requests_from_before_the_server_started_are_not_replayed(env: Env) -> None:
    env.add_account("alice")
    assert cli(env, "accounts", "reset", "alice").exit_code == 0
    await env.start()
    gw = env.gateway
    (alice_id,) = gw.accounts
    gw.pool.cool_down(alice_id, until=env.clock.now + 600, reason="usage_limit", now=env.clock.now)
    await trio.sleep(0.3)  # several store polls (accounts_poll_s is 0.05 s)
    assert not gw.pool.is_usable(alice_id, now=env.clock.now)


def test_reset_of_an_unknown_or_broken_account(tmp_path: object) -> None:
    from pathlib import Path

    from codexgw.store import Store
    from tests.test_importers import codex_auth, write

    store_dir = Path(str(tmp_path)) / "s"
    runner = CliRunner()
    runner.invoke(
        main, ["--store", str(store_dir), "accounts", "import", str(write(Path(str(tmp_path)), codex_auth()))]
    )
    store = Store.open(store_dir)
    store.set_status(store.get_account("alice").id, "needs_login", "refresh_token_reused")  # type: ignore[union-attr]
    result = runner.invoke(main, ["--store", str(store_dir), "accounts", "reset", "alice"])
    assert result.exit_code == 0
    assert "note: alice is needs_login (refresh_token_reused), which a reset does not change" in result.stderr
    assert "login pkce --name alice --relogin" in result.stderr
    missing = runner.invoke(main, ["--store", str(store_dir), "accounts", "reset", "nobody"])
    assert (missing.exit_code, missing.stderr) == (1, "error: no account named 'nobody'\n")


async def test_a_cooldown_that_ends_by_itself_logs_one_line(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    env.add_account("alice")
    await env.start()
    gw = env.gateway
    (alice_id,) = gw.accounts
    gw.pool.cool_down(alice_id, until=env.clock.now + 30, reason="rate_limited", now=env.clock.now)
    await trio.sleep(0.2)
    env.clock.advance(31)
    await wait_until(lambda: any("usable again" in r.getMessage() for r in caplog.records))
    await trio.sleep(0.2)
    lines = [r.getMessage() for r in caplog.records if "usable again" in r.getMessage()]
    assert lines == ["account alice is usable again: its cooldown ended (it was cooling down: rate_limited)"]


# -- the pool core: which cooldowns ended, and why --------------------------------------------------


def pool_of(*names: str) -> Pool:
    pool = Pool()
    pool.set_accounts(
        AccountView(id=i, name=n, enabled=True, status="active", weight=1.0, plan_type="plus")
        for i, n in enumerate(names, start=1)
    )
    return pool


def test_take_recoveries_reports_each_end_once_with_its_cause() -> None:
    pool = pool_of("alice", "bob", "carol")
    pool.cool_down(1, until=100.0, reason="usage_limit", now=0.0)
    pool.cool_down(2, until=500.0, reason="usage_limit", now=0.0)
    pool.cool_down(3, until=500.0, reason="HTTP 403", now=0.0, quota=False)
    assert pool.take_recoveries(10.0) == []
    headroom = QuotaSnapshot(primary=Window(10.0, 300, 9000.0), secondary=None, observed_at=20.0)
    pool.record_quota(2, headroom)  # a probe lifts bob early
    pool.clear_cooldown(3, why="`accounts reset` cleared it", before=30.0)
    assert [(r.name, r.reason, r.why) for r in pool.take_recoveries(101.0)] == [
        ("alice", "usage_limit", "its cooldown ended"),
        ("bob", "usage_limit", "a quota reading shows headroom again"),
        ("carol", "HTTP 403", "`accounts reset` cleared it"),
    ]
    assert pool.take_recoveries(102.0) == []


def test_clear_cooldown_before_keeps_a_newer_cooldown() -> None:
    pool = pool_of("alice")
    pool.cool_down(1, until=900.0, reason="usage_limit", now=50.0)
    pool.clear_cooldown(1, before=40.0)  # the reset was asked for before this cooldown began
    assert not pool.is_usable(1, now=60.0)
    pool.clear_cooldown(1, before=50.0)
    assert pool.is_usable(1, now=60.0)
