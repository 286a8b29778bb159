"""Device-code login (codex-protocol.md §2) against the fake issuer.

The test plays the user with ``approve_device`` / ``deny_device``; time is the shared fake clock and
the poll sleep is injected, so nothing waits for wall-clock seconds.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from click.testing import CliRunner

from codexgw.auth.device import DevicePrompt, device_login
from codexgw.auth.login import LoginError, finish_login
from codexgw.cli.main import main
from codexgw.store import Store
from tests.conftest import Env


class Sleeps:
    """An injected ``sleep``: records the requested seconds and yields briefly instead."""

    def __init__(self) -> None:
        self.requested: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        await trio.sleep(0.001)


async def run_device(
    env: Env, http: httpx.AsyncClient, prompts: list[DevicePrompt], sleeps: Sleeps, **kw: Any
) -> Any:
    return await device_login(
        http, auth_url=env.fake_url, on_prompt=prompts.append, clock=env.clock, sleep=sleeps, **kw
    )


async def wait_prompt(prompts: list[DevicePrompt]) -> DevicePrompt:
    with trio.fail_after(5):
        while not prompts:
            await trio.sleep(0.001)
    return prompts[0]


async def test_device_login_end_to_end(env: Env) -> None:
    alice = env.fake.add_account(email="alice@example.com")
    env.fake.device_interval = "0"
    store = Store.open(env.store_dir)
    prompts: list[DevicePrompt] = []
    sleeps = Sleeps()
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        out: dict[str, Any] = {}

        async def go() -> None:
            tokens = await run_device(env, http, prompts, sleeps, min_interval_s=0)
            out["result"] = await finish_login(http, store, tokens, auth_url=env.fake_url, name="bob")

        nursery.start_soon(go)
        prompt = await wait_prompt(prompts)
        assert prompt.verification_url == f"{env.fake_url}/codex/device"
        assert prompt.expires_at == pytest.approx(env.clock() + 900)
        await env.fake.wait_for(lambda: len([r for r in env.fake.requests if "deviceauth/token" in r.path]) >= 2)
        env.fake.approve_device(prompt.user_code, alice)
    result = out["result"]
    assert result.created and result.account.name == "bob"
    assert result.account.chatgpt_account_id == alice.chatgpt_account_id
    assert result.account.refresh_token == alice.refresh_token
    assert sleeps.requested and set(sleeps.requested) == {0.0}
    [exchange] = [t for t in env.fake.token_requests if t.grant_type == "authorization_code"]
    assert exchange.outcome == "ok"


async def test_poll_interval_has_a_floor_and_follows_the_server(env: Env) -> None:
    """The server's "5" is used as is; a "0" is raised to the 1 s floor."""
    for interval, expected in (("5", 5.0), ("0", 1.0)):
        env.fake.device_interval = interval
        prompts: list[DevicePrompt] = []
        sleeps = Sleeps()
        async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
            nursery.start_soon(run_device, env, http, prompts, sleeps)
            prompt = await wait_prompt(prompts)
            assert prompt.interval_s == expected
            with trio.fail_after(5):
                while not sleeps.requested:
                    await trio.sleep(0.001)
            assert sleeps.requested[0] == expected
            nursery.cancel_scope.cancel()


async def test_denied(env: Env) -> None:
    env.fake.device_interval = "0"
    prompts: list[DevicePrompt] = []
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        errors: list[LoginError] = []

        async def go() -> None:
            try:
                await run_device(env, http, prompts, Sleeps(), min_interval_s=0)
            except LoginError as e:
                errors.append(e)

        nursery.start_soon(go)
        env.fake.deny_device((await wait_prompt(prompts)).user_code)
    [error] = errors
    assert "denied" in str(error)


async def test_expired_code_on_the_fake_clock(env: Env) -> None:
    """15 minutes pass (on the shared fake clock) without approval: a clear 'expired' error."""
    env.fake.device_interval = "0"
    prompts: list[DevicePrompt] = []
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        errors: list[LoginError] = []

        async def go() -> None:
            try:
                await run_device(env, http, prompts, Sleeps(), min_interval_s=0)
            except LoginError as e:
                errors.append(e)

        nursery.start_soon(go)
        await wait_prompt(prompts)
        env.clock.advance(15 * 60 + 1)
    [error] = errors
    assert "expired" in str(error) and "login device" in str(error)


async def test_own_deadline_when_the_server_keeps_answering_pending(env: Env) -> None:
    env.fake.device_interval = "0"
    prompts: list[DevicePrompt] = []
    async with httpx.AsyncClient() as http:
        with pytest.raises(LoginError, match="expired"):
            await run_device(env, http, prompts, Sleeps(), min_interval_s=0, ttl_s=-1)


async def test_device_login_not_enabled(env: Env) -> None:
    env.fake.device_login_enabled = False
    async with httpx.AsyncClient() as http:
        with pytest.raises(LoginError, match=r"not enabled.*login pkce"):
            await run_device(env, http, [], Sleeps())


async def test_cli_login_device(env: Env) -> None:
    """The real command (in a worker thread, its own trio run) while the test approves."""
    alice = env.fake.add_account(email="alice@example.com")
    env.fake.device_interval = "0"
    args = [
        "--store", str(env.store_dir), "login", "device", "--name", "alice",
        "--auth-url", env.fake_url, "--min-poll-interval", "0",
    ]
    async with trio.open_nursery() as nursery:
        results: list[Any] = []

        async def cli() -> None:
            results.append(await trio.to_thread.run_sync(lambda: CliRunner().invoke(main, args)))

        nursery.start_soon(cli)
        with trio.fail_after(10):
            await env.fake.wait_for(lambda: bool(env.fake.devices.by_user_code))
        [user_code] = env.fake.devices.by_user_code
        env.fake.approve_device(user_code, alice)
    [result] = results
    assert result.exit_code == 0, result.output
    assert user_code in result.stdout and f"{env.fake_url}/codex/device" in result.stdout
    assert "logged in: added account alice" in result.stdout
    for secret in (alice.id_token, alice.access_token, alice.refresh_token):
        assert secret not in result.stdout and secret not in result.stderr
    assert Store.open(env.store_dir).get_account("alice") is not None


async def test_cli_login_device_not_enabled(env: Env) -> None:
    env.fake.device_login_enabled = False
    args = ["--store", str(env.store_dir), "login", "device", "--auth-url", env.fake_url]
    result = await trio.to_thread.run_sync(lambda: CliRunner().invoke(main, args))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: device code login is not enabled")
