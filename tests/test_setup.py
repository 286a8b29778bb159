"""`codexgw setup` (codexgw.cli.setup) against the fake upstream: a device-code login, the Codex CLI
pointed at the gateway, the service unit in --service-dry-run, ending with a healthy server; a
second run changing nothing; adopting ~/.codex/auth.json; a key for a public address."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner, Result

from codexgw.cli import service as service_module
from codexgw.cli.main import main
from codexgw.store import Store
from tests.conftest import Env


@pytest.fixture(autouse=True)
def _headless(monkeypatch: pytest.MonkeyPatch) -> None:
    """A headless machine without systemd (like the container the tests run in)."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(service_module, "systemd_running", lambda: False)
    monkeypatch.setattr(service_module, "temporary_dirs", lambda: [])


def setup_args(env: Env, port: int, *extra: str) -> list[str]:
    return [
        "--store", str(env.store_dir), "--config", str(env.tmp / "config.toml"),
        "setup", "--yes", "--service-dry-run", "--codex-home", str(env.tmp / "codex"),
        "--port", str(port), "--auth-url", env.fake_url, "--upstream", f"{env.fake_url}/backend-api",
        "--wait", "10", "--min-poll-interval", "0", *extra,
    ]  # fmt: skip


async def invoke(args: list[str]) -> Result:
    return await trio.to_thread.run_sync(lambda: CliRunner().invoke(main, args, catch_exceptions=False))


def port_of(env: Env) -> int:
    return int(env.url.rsplit(":", 1)[1])


async def test_setup_yes_logs_in_configures_and_ends_with_a_healthy_server(env: Env) -> None:
    alice = env.fake.add_account(email="alice@example.com")
    env.fake.device_interval = "0"
    await env.start()  # the server the service would run, on the port setup is given
    results: list[Result] = []
    async with trio.open_nursery() as nursery:

        async def run_setup() -> None:
            results.append(await invoke(setup_args(env, port_of(env))))

        nursery.start_soon(run_setup)
        with trio.fail_after(10):
            await env.fake.wait_for(lambda: bool(env.fake.devices.by_user_code))
        [user_code] = env.fake.devices.by_user_code
        env.fake.approve_device(user_code, alice)
    [result] = results
    out = result.stdout
    assert result.exit_code == 0, result.output
    assert user_code in out and "logged in: added account alice" in out
    assert "ExecStart=" in out and "Restart=on-failure" in out and "(dry run: nothing written)" in out
    assert f"Base URL:  {env.url}/v1" in out and "API key:   none needed on loopback" in out
    assert "healthy: 1/1 accounts usable" in out
    assert "alice" in out.split("healthy:")[1]  # the status table
    codex = tomllib.loads((env.tmp / "codex" / "config.toml").read_text())
    assert codex["model_provider"] == "codexgw"
    assert codex["model_providers"]["codexgw"]["base_url"] == f"{env.url}/v1"
    assert [a.name for a in Store.open(env.store_dir).list_accounts()] == ["alice"]
    for secret in (alice.refresh_token, alice.access_token, alice.id_token):
        assert secret not in result.output

    again = await invoke(setup_args(env, port_of(env)))
    assert again.exit_code == 0, again.output
    assert "1 usable account(s) already: alice" in again.stdout
    assert "already points Codex at" in again.stdout
    assert len(env.fake.devices.by_user_code) == 1  # no second login
    assert "healthy: 1/1 accounts usable" in again.stdout


async def test_setup_adopts_the_codex_login_linked(env: Env) -> None:
    bob = env.fake.add_account(email="bob@example.com")
    env.fake.write_auth_json(bob, env.tmp / "codex" / "auth.json")
    await env.start()
    result = await invoke(setup_args(env, port_of(env)))
    assert result.exit_code == 0, result.output
    assert f"imported bob, linked to {env.tmp / 'codex' / 'auth.json'}" in result.stdout
    [account] = Store.open(env.store_dir).list_accounts()
    assert account.linked_path == str((env.tmp / "codex" / "auth.json").resolve())
    assert f"ReadWritePaths=-{env.tmp / 'codex'}" in result.stdout  # the service may write it back
    assert "healthy: 1/1" in result.stdout


async def test_setup_on_a_public_address_generates_a_key(env: Env) -> None:
    bob = env.fake.add_account(email="bob@example.com")
    env.fake.write_auth_json(bob, env.tmp / "codex" / "auth.json")
    args = setup_args(env, 18080, "--host", "0.0.0.0", "--login", "copy")
    args[args.index("--wait") + 1] = "0"
    result = await invoke(args)
    assert result.exit_code == 0, result.output
    config = env.tmp / "config.toml"
    key = tomllib.loads(config.read_text())["serve"]["api_key"]
    assert len(key) >= 32 and config.stat().st_mode & 0o777 == 0o600
    assert key not in result.output and "generated an API key into" in result.stdout
    codex = tomllib.loads((env.tmp / "codex" / "config.toml").read_text())
    assert codex["model_providers"]["codexgw"]["env_key"] == "CODEXGW_API_KEY"
    assert "--host 0.0.0.0" in result.stdout  # passed on to the service
    assert f"--config {config}" in result.stdout
    assert "no server answers at http://127.0.0.1:18080 yet" in result.stdout
    await invoke(args)
    assert tomllib.loads(config.read_text())["serve"]["api_key"] == key  # kept, not replaced


async def test_setup_link_without_a_codex_login_is_one_line(env: Env) -> None:
    result = await invoke(setup_args(env, 18081, "--login", "link"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no Codex login at") and len(result.stderr.splitlines()) == 1


def test_choose_login_defaults() -> None:
    from codexgw.cli.setup import choose_login

    def pick(**kw: Any) -> str:
        return choose_login(None, interactive=False, **kw)

    assert pick(has_codex_auth=True, browser=False) == "link"
    assert pick(has_codex_auth=False, browser=False) == "device"
    assert pick(has_codex_auth=False, browser=True) == "pkce"
    assert choose_login("copy", has_codex_auth=True, browser=True, interactive=True) == "copy"


def test_ensure_api_key_keeps_the_rest(tmp_path: Path) -> None:
    from codexgw.cli.setup import ensure_api_key

    path = tmp_path / "config.toml"
    path.write_text('# mine\n[serve]\nport = 9000 # keep\n\n[notify]\nurl = "http://x"\n')
    key = ensure_api_key(path)
    text = path.read_text()
    assert text.startswith("# mine\n[serve]\napi_key = ") and "port = 9000 # keep" in text
    assert tomllib.loads(text) == {"serve": {"api_key": key, "port": 9000}, "notify": {"url": "http://x"}}
    other = tmp_path / "other.toml"
    other.write_text('[notify]\nurl = "http://x"')
    ensure_api_key(other)
    assert set(tomllib.loads(other.read_text())) == {"notify", "serve"}
