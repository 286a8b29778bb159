"""Logins and names: a ``--name`` in use is refused before the sign-in (``--relogin`` renews that
account), a re-import under another name says it renamed, ``login pkce`` counts down."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner
from rich.console import Console

from codexgw.cli import login as login_module
from codexgw.cli.main import main
from codexgw.store import Store
from tests.conftest import Env
from tests.fakes import FakeAccount
from tests.test_importers import codex_auth, write
from tests.test_store import id_token


async def device_login(env: Env, account: FakeAccount, *args: str) -> Any:
    """``login device …`` (the real command, in a thread) while the test approves as ``account``."""
    env.fake.device_interval = "0"
    argv = ["--store", str(env.store_dir), "login", "device", "--auth-url", env.fake_url,
            "--min-poll-interval", "0", *args]  # fmt: skip
    results: list[Any] = []
    async with trio.open_nursery() as nursery:

        async def cli() -> None:
            results.append(await trio.to_thread.run_sync(lambda: CliRunner().invoke(main, argv)))

        nursery.start_soon(cli)
        with trio.fail_after(10):
            await env.fake.wait_for(lambda: bool(env.fake.devices.by_user_code) or bool(results))
        if not results:
            [user_code] = env.fake.devices.by_user_code
            env.fake.approve_device(user_code, account)
    return results[0]


async def test_a_name_in_use_is_refused_before_the_sign_in_starts(env: Env) -> None:
    alice = env.fake.add_account(email="alice@example.com")
    first = await device_login(env, alice, "--name", "alice")
    assert first.exit_code == 0, first.output
    requests = len(env.fake.requests)
    for how in ("device", "pkce"):
        again = CliRunner().invoke(
            main, ["--store", str(env.store_dir), "login", how, "--name", "alice", "--auth-url", env.fake_url]
        )
        assert again.exit_code == 1
        assert again.stderr == (
            "error: name 'alice' is already used by account alice (alice@example.com, plus); "
            f"`codexgw login {how} --name alice --relogin` renews that account's login, or pick another --name\n"
        )
    assert len(env.fake.requests) == requests  # no sign-in was started


async def test_relogin_renews_the_account(env: Env) -> None:
    alice = env.fake.add_account(email="alice@example.com")
    assert (await device_login(env, alice, "--name", "alice")).exit_code == 0
    store = Store.open(env.store_dir)
    account = store.get_account("alice")
    assert account is not None
    store.set_status(account.id, "needs_login", "refresh failed: refresh_token_reused")
    env.fake.devices.by_user_code.clear()
    renewed = await device_login(env, alice, "--name", "alice", "--relogin")
    assert renewed.exit_code == 0, renewed.output
    assert "logged in: updated account alice (alice@example.com, plus)" in renewed.stdout
    assert store.get_account("alice").status == "active"  # type: ignore[union-attr]


async def test_relogin_as_another_chatgpt_account_is_refused_at_the_end(env: Env) -> None:
    alice = env.fake.add_account(email="alice@example.com")
    bob = env.fake.add_account(email="bob@example.com")
    assert (await device_login(env, alice, "--name", "alice")).exit_code == 0
    env.fake.devices.by_user_code.clear()
    wrong = await device_login(env, bob, "--name", "alice", "--relogin")
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith(
        "error: you signed in as bob@example.com, but name 'alice' is already used by another account "
        "(alice@example.com); sign in as that one to renew it, or pick another --name"
    )
    assert [a.email for a in Store.open(env.store_dir).list_accounts()] == ["alice@example.com"]


def test_relogin_needs_a_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--store", str(tmp_path), "login", "pkce", "--relogin"])
    assert result.exit_code == 2 and "--relogin needs --name NAME" in result.stderr


def test_a_reimport_under_another_name_says_it_renamed(tmp_path: Path) -> None:
    store_dir = tmp_path / "s"
    auth = write(tmp_path, codex_auth())
    assert (
        CliRunner().invoke(main, ["--store", str(store_dir), "accounts", "import", str(auth)]).exit_code == 0
    )
    again = CliRunner().invoke(
        main, ["--store", str(store_dir), "accounts", "import", str(auth), "--name", "work"]
    )
    assert again.exit_code == 0
    assert again.stdout == "updated work (alice@example.com, plus; renamed from alice)\n"
    other = write(tmp_path, codex_auth(tokens_id_token=id_token("acct-2", email="b@example.com")), "b.json")
    same = CliRunner().invoke(main, ["--store", str(store_dir), "accounts", "import", str(other)])
    assert same.stdout == "imported b (b@example.com, plus)\n"


def test_login_pkce_counts_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``login pkce`` runs the countdown ``login device`` shows, until its --timeout."""
    seen: list[tuple[float, str]] = []

    async def countdown(expires_at: float, text: str, **_: Any) -> None:
        seen.append((expires_at, text))
        await trio.sleep_forever()

    from codexgw.auth import login as auth_login

    async def pkce_login(*_a: Any, **_k: Any) -> Any:
        await trio.sleep(0)
        raise auth_login.LoginError("stop here")

    monkeypatch.setattr(login_module, "_countdown", countdown)
    monkeypatch.setattr(auth_login, "pkce_login", pkce_login)
    result = CliRunner().invoke(
        main, ["--store", str(tmp_path), "login", "pkce", "--timeout", "120", "--no-browser"]
    )
    assert result.exit_code == 1 and "stop here" in result.stderr
    [(expires_at, text)] = seen
    assert text == "Waiting for the sign-in… {left} left"
    assert 110 < expires_at - time.time() <= 120


async def test_the_countdown_line(autojump_clock: Any) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=60)
    with trio.move_on_after(2.5):
        await login_module._countdown(time.time() + 299.5, "Waiting… {left} left", console=console)
    assert "Waiting… 04:59 left" in out.getvalue()
    quiet = io.StringIO()
    await login_module._countdown(time.time() + 10, "x {left}", console=Console(file=quiet))
    assert quiet.getvalue() == ""  # no terminal: no countdown
