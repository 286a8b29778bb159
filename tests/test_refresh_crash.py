"""A crash during a token refresh (auth/holder.py, auth/refresh.py, upstream/accounts.py; issue 16).

``codexgw accounts refresh`` runs as a real process; the fake issuer rotates the tokens and holds
its answer (``refresh_answer_gate``), so the refresh token is spent when the process is killed with
SIGKILL while holding the account's refresh lease. Before issue 16 the next caller waited out the
dead process's lease (~38 s of its 60 s), then got ``refresh_token_reused`` and put the account,
with an hour of access token left, in ``needs_login``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from codexgw.auth.holder import holder_gone, new_owner, process_start
from codexgw.store.sqlite import Store
from tests.conftest import Env

ROOT = Path(__file__).resolve().parents[1]
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}


async def kill_mid_refresh(env: Env, name: str) -> None:
    """Run ``accounts refresh NAME`` and SIGKILL it once the issuer spent the refresh token."""
    env.fake.refresh_answer_gate = trio.Event()
    command = [
        sys.executable, "-m", "codexgw", "--store", str(env.store_dir),
        "accounts", "refresh", name, "--auth-url", env.fake_url,
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ)
    )
    try:
        with trio.fail_after(30):
            await env.fake.wait_for(lambda: env.fake.refresh_answering == 1)
    finally:
        process.kill()
        await process.wait()
    env.fake.refresh_answer_gate.set()  # the dead client's answer goes nowhere


@pytest.mark.trio
async def test_a_lease_whose_holder_was_killed_is_taken_over_at_once_and_the_account_keeps_serving(
    env: Env,
) -> None:
    alice = env.add_account("alice")  # access token valid for an hour
    await kill_mid_refresh(env, "alice")
    store = Store.open(env.store_dir)
    account = store.get_account("alice")
    assert account is not None and account.status == "active"
    await env.start()
    started = trio.current_time()
    with trio.fail_after(10):
        refreshed = await env.gateway.refresh(account)
    took = trio.current_time() - started
    assert took < 3  # taken over at once (before: the dead holder's 60 s lease)
    assert refreshed.status == "login_expiring"
    assert refreshed.access_token == account.access_token  # the hour-long token still serves
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
        assert r.status_code == 200, r.text
        assert env.fake.requests[-1].account_id == alice.chatgpt_account_id
        status = (await client.get(f"{env.url}/status")).json()
        row = next(a for a in status["accounts"] if a["name"] == "alice")
        assert row["status"] == "login_expiring" and row["usable"]
        assert "refresh_token_reused" in row["status_reason"] and "--relogin" in row["status_reason"]
        stored = Store.open(env.store_dir).get_account("alice")
        assert stored is not None and stored.status == "login_expiring"

        env.clock.advance(3700)  # the access token expired: now it needs a login
        r = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
        assert r.status_code in (502, 503) and set(r.json()["error"]) == {"message", "type", "param", "code"}
    stored = Store.open(env.store_dir).get_account("alice")
    assert stored is not None and stored.status == "needs_login"


def test_holder_gone_knows_a_live_process_a_dead_one_a_reused_pid_and_foreign_owners() -> None:
    mine = new_owner()
    host, pid, start, _nonce = mine.split("|")
    assert int(pid) == os.getpid() and start
    assert not holder_gone(mine)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert holder_gone(f"{host}|{child.pid}|{start}|x")  # exited (and reaped)
    assert holder_gone(f"{host}|{pid}|{int(start) - 1}|x")  # our pid, another start: reused
    assert not holder_gone(f"other-host|{child.pid}|{start}|x")  # another host: its TTL decides
    assert not holder_gone(f"{os.getpid()}-abcd1234")  # an older codexgw's owner
    assert not holder_gone(f"{host}|0|{start}|x")


def test_a_zombie_holder_is_gone() -> None:
    """Killed but not yet reaped by its parent: the process is over."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = new_owner().split("|")[0]
        owner = f"{host}|{child.pid}|{process_start(child.pid)}|x"
        assert not holder_gone(owner)
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, still a zombie
        assert holder_gone(owner)
    finally:
        child.wait()
