"""Account commands against the fake issuer: refresh (racing a running server), remove (revoke),
export → import round trip, peers' files, refresh failures and the Refresher's backoff (§3, §5)."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from click.testing import CliRunner, Result

from codexgw.auth.refresh import BACKOFF_MAX_S, NeedsLogin, Refresher
from codexgw.cli.main import main
from codexgw.oauth.tokens import RefreshError
from codexgw.store import Store
from codexgw.store.importers import parse_rfc3339
from tests.conftest import Env
from tests.fakes import CLIENT_ID, FakeAccount


def cli(env: Env, *args: str, secrets: tuple[str, ...] = ()) -> Result:
    """Run codexgw in this thread (no trio run may be active in it) and check no token leaks."""
    result = CliRunner().invoke(main, ["--store", str(env.store_dir), *args])
    for account in env.fake.accounts:
        for secret in (account.id_token, account.access_token, account.refresh_token, *secrets):
            assert secret not in result.stdout and secret not in result.stderr
    return result


async def cli_in_thread(env: Env, *args: str) -> Result:
    return await trio.to_thread.run_sync(lambda: cli(env, *args))


def refreshes(env: Env) -> list[str]:
    return [t.outcome for t in env.fake.token_requests if t.grant_type == "refresh_token"]


@pytest.fixture
def leases(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Every refresh-lease attempt in this process, as ``(owner, acquired)``."""
    seen: list[tuple[str, bool]] = []
    original = Store.try_acquire_refresh_lease

    def spy(self: Store, account_id: int, owner: str, **kw: Any) -> bool:
        acquired = original(self, account_id, owner, **kw)
        seen.append((owner, acquired))
        return acquired

    monkeypatch.setattr(Store, "try_acquire_refresh_lease", spy)
    return seen


async def until(predicate: Any) -> None:
    with trio.fail_after(10):
        while not predicate():
            await trio.sleep(0.01)


@pytest.mark.parametrize("first", ["server", "cli"])
async def test_cli_refresh_racing_the_server_never_reuses_a_token(
    env: Env, leases: list[tuple[str, bool]], first: str
) -> None:
    """Whoever refreshes first, the other waits on the store lease and takes the rotated tokens."""
    alice = env.add_account("alice")
    await env.start()
    gate = trio.Event()
    env.fake.refresh_gate = gate
    account = next(iter(env.gateway.accounts.values()))
    results: list[Any] = []

    async def server() -> None:
        results.append(await env.gateway.refresh(account))

    async def command() -> None:
        results.append(await cli_in_thread(env, "accounts", "refresh", "alice", "--auth-url", env.fake_url))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server if first == "server" else command)
        await env.fake.wait_for(lambda: env.fake.refresh_waiting == 1)
        nursery.start_soon(command if first == "server" else server)
        await until(lambda: any(not acquired for _, acquired in leases))  # the second one is waiting
        gate.set()
    assert refreshes(env) == ["ok"]
    assert alice.refresh_count == 1
    stored = Store.open(env.store_dir).get_account("alice")
    assert stored is not None and stored.refresh_token == alice.refresh_token
    result = next(r for r in results if isinstance(r, Result))
    assert result.exit_code == 0, result.output
    expected = "already refreshed by another process" if first == "server" else "alice: refreshed"
    assert expected in result.stdout
    assert env.gateway.refresher.refresh_calls == (1 if first == "server" else 0)


async def test_refresh_all(env: Env) -> None:
    alice, bob = env.add_account("alice"), env.add_account("bob")
    old = (alice.refresh_token, bob.refresh_token)
    result = await cli_in_thread(env, "accounts", "refresh", "--auth-url", env.fake_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": refreshed (access token valid for") == 2
    stored = {a.name: a.refresh_token for a in Store.open(env.store_dir).list_accounts()}
    assert stored == {"alice": alice.refresh_token, "bob": bob.refresh_token}
    assert set(stored.values()).isdisjoint(old)


async def test_permanent_refresh_failure_marks_needs_login(env: Env) -> None:
    """``refresh_token_reused`` with the access token already expired: nothing left to serve with."""
    env.add_account("alice", access_ttl_s=-60)
    env.fake.fail_next_refresh(401, {"error": {"code": "refresh_token_reused", "message": "used"}})
    result = await cli_in_thread(env, "accounts", "refresh", "alice", "--auth-url", env.fake_url)
    assert result.exit_code == 1
    assert "alice: refresh failed: the refresh token was already used; log in again" in result.stderr
    stored = Store.open(env.store_dir).get_account("alice")
    assert stored is not None and stored.status == "needs_login"
    assert "refresh_token_reused" in (stored.status_reason or "")
    listed = await cli_in_thread(env, "accounts", "list")
    assert "needs_login (refresh failed: refresh_token_reused)" in listed.stdout
    skipped = await cli_in_thread(env, "accounts", "refresh", "--auth-url", env.fake_url)
    assert "alice: skipped (needs a new login" in skipped.stdout


async def test_refresh_token_reused_with_a_valid_access_token_keeps_the_account_serving(env: Env) -> None:
    """Issue 16: a refresh cut short (the token spent, its answer lost) used to put an account with
    an hour of access token left in ``needs_login``; now it is ``login_expiring`` and still usable."""
    env.add_account("alice")  # access token valid for an hour
    env.fake.fail_next_refresh(401, {"error": {"code": "refresh_token_reused", "message": "used"}})
    result = await cli_in_thread(env, "accounts", "refresh", "alice", "--auth-url", env.fake_url)
    assert result.exit_code == 1
    stored = Store.open(env.store_dir).get_account("alice")
    assert stored is not None and stored.status == "login_expiring" and stored.eligible
    assert "refresh_token_reused" in (stored.status_reason or "")
    assert "serving on its access token (valid for 59m)" in (stored.status_reason or "")
    listed = await cli_in_thread(env, "accounts", "list")
    assert "login_expiring" in listed.stdout


async def test_the_refresher_reports_a_lost_login_and_writes_no_status(env: Env) -> None:
    """A permanent refusal comes back as NeedsLogin with the reason to record; the store keeps
    ``active`` until the caller records it. A removed account is a permanent failure, not a lost login."""
    env.add_account("alice")
    store = Store.open(env.store_dir)
    account = store.get_account("alice")
    assert account is not None
    env.fake.fail_next_refresh(401, {"error": {"code": "refresh_token_reused", "message": "used"}})
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)
        with pytest.raises(NeedsLogin) as lost:
            await refresher.refresh(account)
        assert lost.value.permanent and lost.value.code == "refresh_token_reused"
        assert lost.value.status_reason == "refresh failed: refresh_token_reused"
        assert str(lost.value) == "the refresh token was already used; log in again"
        stored = store.get_account("alice")
        assert stored is not None and (stored.status, stored.status_reason) == ("active", None)
        assert store.remove_account("alice")
        with pytest.raises(RefreshError) as removed:
            await refresher.refresh(account)
        assert removed.value.permanent and not isinstance(removed.value, NeedsLogin)
    assert refreshes(env) == ["scripted"]


async def test_the_server_records_a_lost_login_once_for_every_waiting_caller(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """Two callers share one refused refresh; the gateway records ``needs_login`` once: in memory
    (the pool stops picking it), in the store before the callers see the error, one log line."""
    caplog.set_level(logging.WARNING)
    env.add_account("alice")
    await env.start()
    gw = env.gateway
    account = next(iter(gw.accounts.values()))
    env.fake.fail_next_refresh(401, {"error": {"code": "refresh_token_expired", "message": "expired"}})
    gate = env.fake.refresh_gate = trio.Event()
    errors: list[BaseException] = []

    async def caller() -> None:
        with pytest.raises(NeedsLogin) as lost:
            await gw.refresh(account)
        errors.append(lost.value)
        stored = gw.store.get_account("alice")
        assert stored.status == "needs_login"
        assert stored.status_reason == "refresh failed: refresh_token_expired"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller)
        nursery.start_soon(caller)
        await env.fake.wait_for(lambda: env.fake.refresh_waiting == 1)
        gate.set()
    assert len(errors) == 2 and errors[0] is errors[1]
    assert refreshes(env) == ["scripted"]
    assert gw.accounts[account.id].status == "needs_login"
    assert not gw.pool.is_usable(account.id, now=env.clock.now)
    changes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("account alice is now")]
    assert changes == ["account alice is now needs_login: refresh failed: refresh_token_expired"]
    sample = {"account": "alice", "status": "needs_login"}
    assert gw.metrics.registry.get_sample_value("codexgw_account_state_changes_total", sample) == 1


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [(500, "internal error", "HTTP 500"), (200, "{not json", "malformed token response")],
)
async def test_token_endpoint_500_or_garbage_leaves_the_store_unchanged(
    env: Env, status: int, body: str, fragment: str
) -> None:
    env.add_account("alice")
    store = Store.open(env.store_dir)
    before = store.get_account("alice")
    env.fake.fail_next_refresh(status, body)
    result = await cli_in_thread(env, "accounts", "refresh", "alice", "--auth-url", env.fake_url)
    assert result.exit_code == 1 and fragment in result.stderr
    after = store.get_account("alice")
    assert after is not None and before is not None
    assert (after.refresh_token, after.access_token, after.status) == (
        before.refresh_token, before.access_token, "active",
    )


async def test_unreachable_oauth_server(env: Env) -> None:
    env.add_account("alice")
    result = await cli_in_thread(env, "accounts", "refresh", "alice", "--auth-url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "could not be reached" in result.stderr


async def test_transient_failures_back_off_exponentially(env: Env) -> None:
    """After a 5xx, refreshes fail fast (no network) until the backoff ends; 5 s doubling to 5 min."""
    env.add_account("alice")
    store = Store.open(env.store_dir)
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)
        account = store.get_account("alice")
        assert account is not None
        delays = []
        for _ in range(9):
            env.fake.fail_next_refresh(503, "busy")
            with pytest.raises(RefreshError) as failed:
                await refresher.refresh(account)
            assert not failed.value.permanent
            calls = refresher.refresh_calls
            with pytest.raises(RefreshError, match="next attempt in") as fast:
                await refresher.refresh(account)
            assert fast.value.code == "refresh_backoff" and refresher.refresh_calls == calls
            delays.append(refresher.backoff_remaining(account.id))
            env.clock.advance(delays[-1])
        assert delays == [5, 10, 20, 40, 80, 160, 300, 300, 300]
        assert delays[-1] == BACKOFF_MAX_S
        updated = await refresher.refresh(account)
        assert refresher.backoff_remaining(account.id) == 0
        assert updated.refresh_token != account.refresh_token
    assert refreshes(env).count("ok") == 1 and "reused" not in refreshes(env)


async def test_remove_revokes_then_deletes(env: Env) -> None:
    alice = env.add_account("alice")
    token = alice.refresh_token
    result = await cli_in_thread(env, "accounts", "remove", "alice", "--auth-url", env.fake_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["revoked the login's refresh token", "removed alice"]
    assert env.fake.revocations == [
        {"token": token, "token_type_hint": "refresh_token", "client_id": CLIENT_ID, "known": True}
    ]
    assert Store.open(env.store_dir).list_accounts() == []


async def test_remove_when_revoke_fails_or_is_skipped(env: Env) -> None:
    env.add_account("alice")
    env.add_account("bob")
    result = await cli_in_thread(env, "accounts", "remove", "alice", "--auth-url", "http://127.0.0.1:9")
    assert result.exit_code == 0 and "could not revoke" in result.stdout
    result = await cli_in_thread(env, "accounts", "remove", "bob", "--no-revoke")
    assert result.exit_code == 0 and result.stdout == "removed bob\n"
    assert env.fake.revocations == []
    missing = await cli_in_thread(env, "accounts", "remove", "carol", "--no-revoke")
    assert missing.exit_code == 1 and "no account named 'carol'" in missing.stderr


async def test_export_then_reimport_round_trip(env: Env, tmp_path: Path) -> None:
    alice = env.add_account("alice")
    target = tmp_path / "codex-home" / "auth.json"
    result = await cli_in_thread(env, "accounts", "export", "alice", "--codex-auth", str(target))
    assert result.exit_code == 0, result.output
    assert "--link" in result.stderr  # the shared-refresh-token warning
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    doc = json.loads(target.read_text())
    assert doc["auth_mode"] == "chatgpt" and doc["OPENAI_API_KEY"] is None
    assert doc["tokens"] == {
        "id_token": alice.id_token,
        "access_token": alice.access_token,
        "refresh_token": alice.refresh_token,
        "account_id": alice.chatgpt_account_id,
    }
    assert doc["last_refresh"].endswith("Z") and parse_rfc3339(doc["last_refresh"]) is not None
    before = Store.open(env.store_dir).get_account("alice")
    assert (await cli_in_thread(env, "accounts", "remove", "alice", "--no-revoke")).exit_code == 0
    again = await cli_in_thread(env, "accounts", "import", str(target), "--name", "alice")
    assert again.exit_code == 0, again.output
    after = Store.open(env.store_dir).get_account("alice")
    assert before is not None and after is not None
    for attr in ("chatgpt_account_id", "email", "plan_type", "id_token", "access_token", "refresh_token"):
        assert getattr(after, attr) == getattr(before, attr)
    assert after.last_refresh == pytest.approx(before.last_refresh, abs=1e-5)


async def test_export_refuses_to_clobber_another_login(env: Env, tmp_path: Path) -> None:
    env.add_account("alice")
    bob = env.fake.add_account(email="bob@example.com")
    target = env.fake.write_auth_json(bob, tmp_path / "auth.json")
    result = await cli_in_thread(env, "accounts", "export", "alice", "--codex-auth", str(target))
    assert result.exit_code == 1 and "--force" in result.stderr
    assert json.loads(target.read_text())["tokens"]["refresh_token"] == bob.refresh_token
    forced = await cli_in_thread(env, "accounts", "export", "alice", "--codex-auth", str(target), "--force")
    assert forced.exit_code == 0


async def test_import_codex_reverse_accounts_json_and_chatmock_auth_json(env: Env, tmp_path: Path) -> None:
    one, two = env.fake.add_account(email="one@example.com"), env.fake.add_account(email="two@example.com")
    three = env.fake.add_account(email="three@example.com")

    def entry(a: FakeAccount, name: str) -> dict[str, Any]:
        return {
            "name": name, "email": a.email, "plan_type": a.plan_type, "access_token": a.access_token,
            "refresh_token": a.refresh_token, "id_token": a.id_token, "api_key": None,
            "last_refresh": "2026-04-25T10:00:00Z",
        }

    reverse = tmp_path / "accounts.json"
    reverse.write_text(json.dumps({"accounts": [entry(one, "first"), entry(two, "second")]}))
    result = await cli_in_thread(env, "accounts", "import", str(reverse))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "imported first (one@example.com, plus)", "imported second (two@example.com, plus)",
    ]
    chatmock = env.fake.auth_json(three)
    del chatmock["auth_mode"]
    path = tmp_path / "chatmock-auth.json"
    path.write_text(json.dumps(chatmock))
    result = await cli_in_thread(env, "accounts", "import", str(path))
    assert result.exit_code == 0 and result.stdout == "imported three (three@example.com, plus)\n"
    refused = await cli_in_thread(env, "accounts", "import", str(reverse), "--link")
    assert refused.exit_code == 2 and "--link needs a Codex CLI auth.json" in refused.stderr
    # and they work: a refresh of each rotates at the fake without reuse
    assert (await cli_in_thread(env, "accounts", "refresh", "--auth-url", env.fake_url)).exit_code == 0
    assert refreshes(env) == ["ok", "ok", "ok"]
