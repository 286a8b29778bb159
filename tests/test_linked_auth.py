"""A Codex CLI auth.json shared with codexgw (``accounts import PATH --link``; auth/linked.py).

"Another process" (the Codex CLI) is played by the test: it rotates the login at the fake and
rewrites the file. codexgw must adopt that rotation instead of spending its own, now-used, refresh
token, and must write its own rotations back.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from click.testing import CliRunner

from codexgw.auth import linked
from codexgw.auth.refresh import NeedsLogin, Refresher
from codexgw.cli.main import main
from codexgw.store import Account, Store
from tests.conftest import Env, in_thread
from tests.fakes import FakeAccount


def outcomes(env: Env) -> list[str]:
    return [t.outcome for t in env.fake.token_requests if t.grant_type == "refresh_token"]


async def link(env: Env, name: str = "alice", **kw: Any) -> tuple[FakeAccount, Path, Account]:
    """A fake login written as a Codex auth.json (with a field codexgw does not know) and imported
    with ``--link``."""
    fake_account = env.fake.add_account(email=f"{name}@example.com", **kw)
    path = env.fake.write_auth_json(fake_account, env.tmp / "codex" / "auth.json")
    doc = json.loads(path.read_text())
    doc["agent_identity"] = {"kept": True}
    path.write_text(json.dumps(doc))
    args = ["--store", str(env.store_dir), "accounts", "import", str(path), "--link", "--name", name]
    result = await trio.to_thread.run_sync(lambda: CliRunner().invoke(main, args))
    assert result.exit_code == 0, result.output
    assert "linked alice" in result.stdout and fake_account.refresh_token not in result.stdout
    account = Store.open(env.store_dir).get_account(name)
    assert account is not None and account.linked_path == str(path.resolve())
    return fake_account, path, account


def codex_rotates(env: Env, fake_account: FakeAccount, path: Path) -> None:
    """The Codex CLI refreshes on its own: spends the shared refresh token and rewrites auth.json."""
    _, outcome = env.fake.use_refresh_token(fake_account.refresh_token)
    assert outcome == "ok"
    env.fake.write_auth_json(fake_account, path)


async def test_rotation_by_another_process_is_adopted_without_network(env: Env) -> None:
    fake_account, path, account = await link(env)
    codex_rotates(env, fake_account, path)
    store = Store.open(env.store_dir)
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)
        updated = await refresher.refresh(account)
    assert refresher.refresh_calls == 0
    assert updated.refresh_token == fake_account.refresh_token
    assert updated.access_token == fake_account.access_token
    assert outcomes(env) == []  # Codex's own rotation happened outside HTTP; nothing reused


async def test_adopted_but_expired_token_is_refreshed_with_the_files_refresh_token(env: Env) -> None:
    fake_account, path, account = await link(env, access_ttl_s=600)
    env.clock.advance(700)  # the stored access token has expired
    codex_rotates(env, fake_account, path)
    env.clock.advance(700)  # the file's access token is expired too
    from_file = fake_account.refresh_token
    store = Store.open(env.store_dir)
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)
        updated = await refresher.refresh(account)
    assert refresher.refresh_calls == 1
    [request] = [t for t in env.fake.token_requests if t.grant_type == "refresh_token"]
    assert (request.refresh_token, request.outcome) == (from_file, "ok")
    assert updated.refresh_token == fake_account.refresh_token
    doc = json.loads(path.read_text())
    assert doc["tokens"]["refresh_token"] == fake_account.refresh_token  # written back


async def test_own_refresh_is_written_back_atomically(env: Env) -> None:
    fake_account, path, account = await link(env)
    os.chmod(path, 0o600)
    inode = os.stat(path).st_ino
    store = Store.open(env.store_dir)
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)
        await refresher.refresh(account)
    doc = json.loads(path.read_text())
    assert doc["tokens"] == {
        "id_token": fake_account.id_token,
        "access_token": fake_account.access_token,
        "refresh_token": fake_account.refresh_token,
        "account_id": fake_account.chatgpt_account_id,
    }
    assert doc["auth_mode"] == "chatgpt" and doc["OPENAI_API_KEY"] is None
    assert doc["agent_identity"] == {"kept": True} and doc["last_refresh"].endswith("Z")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_ino != inode  # replaced by rename
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert outcomes(env) == ["ok"]


async def test_codex_then_codexgw_then_codex_share_one_login(env: Env) -> None:
    """Alternating rotations on both sides never spend a used refresh token."""
    fake_account, path, _ = await link(env)
    store = Store.open(env.store_dir)
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)
        for _ in range(3):
            codex_rotates(env, fake_account, path)  # Codex reads the file we wrote: always current
            stored = store.get_account("alice")
            assert stored is not None
            await refresher.refresh(stored, stale_access_token=stored.access_token)
            stored = store.get_account("alice")
            assert stored is not None
            await refresher.refresh(stored)  # the adopted token was "stale": a real refresh
            codex_view = linked.read_linked(path, stored)
            assert codex_view.refresh_token == fake_account.refresh_token
    assert "reused" not in outcomes(env) and "revoked" not in outcomes(env)
    assert outcomes(env).count("ok") == 3


async def test_a_refused_refresh_adopts_the_rotation_codex_made_meanwhile(env: Env) -> None:
    """Codex (which takes no lock) spends the shared token while ours is in flight: the refusal
    (``refresh_token_reused``) is no lost login, the file's rotation is adopted, no status is set."""
    fake_account, path, account = await link(env)
    env.fake.reuse_revokes_family = False  # so that Codex's new token stays good after our reuse
    store = Store.open(env.store_dir)
    gate = env.fake.refresh_gate = trio.Event()
    results: list[Account] = []
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)

        async def ours() -> None:
            results.append(await refresher.refresh(account))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ours)
            await env.fake.wait_for(lambda: env.fake.refresh_waiting == 1)
            env.clock.advance(5)
            codex_rotates(env, fake_account, path)
            gate.set()
    assert outcomes(env) == ["reused"]
    assert results[0].refresh_token == fake_account.refresh_token
    stored = store.get_account("alice")
    assert stored is not None and stored.refresh_token == fake_account.refresh_token
    assert (stored.status, stored.status_reason) == ("active", None)


async def test_a_refused_refresh_with_nothing_to_adopt_is_a_lost_login(env: Env) -> None:
    _, path, account = await link(env)
    before = path.read_text()
    env.fake.fail_next_refresh(401, {"error": {"code": "refresh_token_invalidated", "message": "gone"}})
    store = Store.open(env.store_dir)
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)
        with pytest.raises(NeedsLogin) as lost:
            await refresher.refresh(account)
    assert lost.value.status_reason == "refresh failed: refresh_token_invalidated"
    assert path.read_text() == before
    stored = store.get_account("alice")
    assert stored is not None and stored.status == "active"  # the caller records it, not the refresher


async def test_a_lost_write_back_is_repaired_not_adopted(env: Env) -> None:
    """The store holds a later rotation than the file (a write-back was lost): ours go to the file."""
    fake_account, path, account = await link(env)
    store = Store.open(env.store_dir)
    store.set_linked_path(account.id, None)
    env.clock.advance(10)
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)
        await refresher.refresh(account)  # not linked: the file keeps the spent token
        store.set_linked_path(account.id, str(path))
        stored = store.get_account("alice")
        assert stored is not None
        await refresher.refresh(stored)
    assert refresher.refresh_calls == 2 and outcomes(env) == ["ok", "ok"]  # the spent one not adopted
    assert json.loads(path.read_text())["tokens"]["refresh_token"] == fake_account.refresh_token


async def test_file_now_holding_another_account_is_left_alone(env: Env) -> None:
    fake_account, path, account = await link(env)
    bob = env.fake.add_account(email="bob@example.com")
    env.fake.write_auth_json(bob, path)
    before = path.read_text()
    store = Store.open(env.store_dir)
    async with httpx.AsyncClient() as http:
        refresher = Refresher(store, http, auth_url=env.fake_url, clock=env.clock)
        updated = await refresher.refresh(account)
    assert updated.refresh_token == fake_account.refresh_token  # refreshed from the store
    assert path.read_text() == before
    assert outcomes(env) == ["ok"]


async def test_missing_file_is_not_recreated(env: Env) -> None:
    _, path, account = await link(env)
    path.unlink()
    store = Store.open(env.store_dir)
    async with httpx.AsyncClient() as http:
        await Refresher(store, http, auth_url=env.fake_url, clock=env.clock).refresh(account)
    assert not path.exists() and outcomes(env) == ["ok"]


async def test_lock_is_exclusive_and_times_out(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    async with linked.locked(path):
        assert (tmp_path / "auth.json.lock").exists()
        with pytest.raises(linked.LinkedFileError, match="still locked"):
            async with linked.locked(path, timeout_s=0.1):
                pass
    async with linked.locked(path, timeout_s=0.1):
        pass


async def test_running_server_adopts_a_rotated_linked_login(env: Env) -> None:
    """End to end: Codex rotates the shared login while codexgw serves; the next refresh the server
    needs uses the file's refresh token, never its own spent one."""
    fake_account, path, _ = await link(env, access_ttl_s=600)
    await env.start()
    stale_refresh = fake_account.refresh_token
    codex_rotates(env, fake_account, path)
    env.clock.advance(601)  # every access token issued so far has expired
    client = env.openai()
    reply = await in_thread(
        client.chat.completions.create, model="gpt-5.5", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    requests = [t for t in env.fake.token_requests if t.grant_type == "refresh_token"]
    assert [t.outcome for t in requests] == ["ok"]
    assert requests[0].refresh_token != stale_refresh
    assert json.loads(path.read_text())["tokens"]["refresh_token"] == fake_account.refresh_token
