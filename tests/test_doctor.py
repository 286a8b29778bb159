"""`codexgw doctor`: the pure checks (codexgw.cli.doctor_checks) on facts, and the whole command
against a real server and the fake upstream: passing on a healthy install, and naming each failure
(broken permissions, an account needing a login, a busy port, a server down, a wrong Codex config,
an unreachable upstream)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner, Result

from codexgw.cli.doctor_checks import (
    PortFacts,
    ReachFacts,
    StoreFacts,
    check_accounts,
    check_clock,
    check_codex_config,
    check_port,
    check_reach,
    check_service,
    check_store,
    check_zipapp,
)
from codexgw.cli.main import main
from codexgw.store import Store
from tests.conftest import Env


def test_store_checks() -> None:
    good = StoreFacts(path="/s", exists=True, files={"codexgw.db": 0o600}, schema=3, known_schema=3)
    assert [c.status for c in check_store(good)] == ["ok", "ok"]
    loose = StoreFacts(
        path="/s", exists=True, dir_mode=0o755, files={"codexgw.db": 0o644}, schema=3, known_schema=3
    )
    perms = check_store(loose)[0]
    assert perms.status == "fail" and "directory 0755" in perms.detail and "codexgw.db 0644" in perms.detail
    assert perms.fix is not None and "chmod 700 /s" in perms.fix
    newer = check_store(StoreFacts(path="/s", exists=True, schema=9, known_schema=3))[1]
    assert newer.status == "fail" and "upgrade codexgw" in (newer.fix or "")
    locked = check_store(
        StoreFacts(path="/s", exists=True, schema=3, known_schema=3, encrypted=True, key="wrong")
    )
    assert locked[-1].status == "fail" and locked[-1].name == "store key"
    assert check_store(StoreFacts(path="/s", exists=False))[0].fix == "add an account: codexgw setup"


def test_account_checks() -> None:
    rows = [
        {"name": "a", "enabled": True, "status": "active", "plan_type": "plus"},
        {"name": "b", "enabled": True, "status": "needs_login", "status_reason": "refresh_token_expired"},
        {"name": "c", "enabled": False, "status": "active"},
        {"name": "d", "enabled": True, "status": "plan_unsupported", "plan_type": "free"},
        {"name": "e", "enabled": True, "status": "suspended"},
        {"name": "f", "enabled": True, "status": "active"},
    ]
    checks = check_accounts(rows, {"f": {"in_s": 240, "reason": "usage_limit"}})
    assert [c.status for c in checks] == ["ok", "fail", "warn", "fail", "fail", "warn"]
    assert checks[1].fix == "codexgw login device --name b" and "refresh_token_expired" in checks[1].detail
    assert "cooling down 240s (usage_limit)" in checks[5].detail
    assert check_accounts([], None)[0].status == "fail"


def test_clock_ports_service_zipapp_reach() -> None:
    assert check_clock(1000.0, 990.0, "chatgpt.com").status == "ok"
    skewed = check_clock(1000.0, 800.0, "chatgpt.com")
    assert skewed.status == "fail" and "+200s" in skewed.detail
    assert check_port(PortFacts("127.0.0.1", 8080, "codexgw", "serve"), required=True).status == "ok"
    assert check_port(PortFacts("127.0.0.1", 8080, "busy", "serve"), required=True).status == "fail"
    assert check_port(PortFacts("127.0.0.1", 1455, "busy", "login"), required=False).status == "warn"
    assert check_service(False, False, None, "user").status == "skip"  # a container: not a failure
    assert check_service(True, False, None, "user").status == "warn"
    assert check_service(True, True, "failed", "user").status == "fail"
    assert check_service(True, True, "active", "user").status == "ok"
    assert check_zipapp("/tmp/x/codexgw.pyz", "/tmp").status == "fail"
    cf = check_reach(
        ReachFacts(
            "upstream", "https://chatgpt.com/x", "http", status=403, cloudflare=True, proxy="HTTPS_PROXY"
        )
    )
    assert cf.status == "fail" and "Cloudflare challenge" in cf.detail and "via HTTPS_PROXY" in cf.detail
    assert check_reach(ReachFacts("upstream", "u", "http", status=401)).status == "ok"
    assert check_reach(ReachFacts("upstream", "u", "http", status=502)).status == "fail"
    dns = check_reach(ReachFacts("upstream", "u", "dns", "DNS cannot resolve x"))
    assert dns.status == "fail" and "DNS" in (dns.fix or "")


@pytest.mark.parametrize(
    ("config", "needs_key", "env", "status", "fragment"),
    [
        (None, False, {}, "warn", "does not exist"),
        ({"model_provider": "codexgw", "model_providers": {"codexgw": {"base_url": "http://gw/v1", "wire_api": "responses"}}}, False, {}, "ok", "→ http://gw/v1"),
        ({"model_provider": "codexgw", "model_providers": {"codexgw": {"base_url": "http://other/v1", "wire_api": "responses"}}}, False, {}, "fail", "points at http://other/v1"),
        ({"model_provider": "codexgw", "model_providers": {"codexgw": {"base_url": "http://gw/v1", "wire_api": "responses"}}}, True, {}, "fail", "no env_key"),
        ({"model_provider": "codexgw", "model_providers": {"codexgw": {"base_url": "http://gw/v1", "wire_api": "responses", "env_key": "K"}}}, True, {}, "warn", "$K, which is not set"),
        ({"model_provider": "codexgw", "model_providers": {"codexgw": {"base_url": "http://gw/v1", "wire_api": "responses", "env_key": "K"}}}, True, {"K": "x"}, "ok", "key from $K"),
        ({"model": "gpt-5.5"}, False, {}, "warn", "not codexgw"),
        ({"model_provider": "codexgw", "model_providers": {"codexgw": {"base_url": "http://gw/v1", "wire_api": "chat"}}}, False, {}, "fail", "wire_api"),
    ],
)  # fmt: skip
def test_codex_config_check(
    config: Any, needs_key: bool, env: dict[str, str], status: str, fragment: str
) -> None:
    check = check_codex_config("/h/config.toml", config, None, "http://gw/v1", needs_key, env)
    assert check.status == status and fragment in check.detail, check


# -- the whole command ------------------------------------------------------------------------------


def write_codex_config(home: Path, base_url: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'model_provider = "codexgw"\n\n[model_providers.codexgw]\nname = "codexgw"\nbase_url = "{base_url}"\n'
        'wire_api = "responses"\n'
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def doctor(
    env: Env, *args: str, url: str | None = None, upstream: str | None = None
) -> tuple[Result, dict[str, dict[str, Any]]]:
    base = [
        "--store", str(env.store_dir), "doctor", "--json",
        "--url", url or env.url,
        "--upstream", upstream or f"{env.fake_url}/backend-api",
        "--auth-url", env.fake_url,
        "--codex-home", str(env.tmp / "codex"),
        "--callback-port", str(free_port()),
    ]  # fmt: skip
    result = await trio.to_thread.run_sync(
        lambda: CliRunner().invoke(main, [*base, *args], catch_exceptions=False)
    )
    doc = json.loads(result.stdout)
    assert doc["ok"] == (result.exit_code == 0)
    return result, {c["check"]: c for c in doc["checks"]}


async def test_doctor_passes_on_a_healthy_install(env: Env) -> None:
    env.add_account("alice")
    await env.start()
    write_codex_config(env.tmp / "codex", f"{env.url}/v1")
    result, checks = await doctor(env)
    assert result.exit_code == 0, json.dumps(checks, indent=1)
    assert {c["status"] for c in checks.values()} <= {"ok", "skip"}
    assert checks["account alice"]["status"] == "ok"
    port = env.url.rsplit(":", 1)[1]
    assert checks[f"port {port}"]["detail"] == "held by codexgw (codexgw serve)"
    assert checks["server"]["detail"].endswith("1/1 accounts usable")
    assert checks["clock"]["status"] == "ok" and checks["upstream"]["detail"].endswith("HTTP 401")
    assert checks["oauth issuer"]["status"] == "ok"
    assert checks["service"]["status"] == "skip"  # no systemd in a container: said, not failed
    text = await trio.to_thread.run_sync(
        lambda: CliRunner().invoke(
            main,
            ["--store", str(env.store_dir), "doctor", "--url", env.url, "--offline", "--codex-home", str(env.tmp / "codex"),
             "--callback-port", str(free_port())],
        )
    )  # fmt: skip
    assert text.exit_code == 0 and text.stdout.splitlines()[-1] == "all checks passed"
    assert "✓ account alice: active, plus" in text.stdout


async def test_doctor_names_each_failure(env: Env) -> None:
    alice = env.add_account("alice")
    await env.start()
    write_codex_config(env.tmp / "codex", "http://127.0.0.1:1/v1")  # a wrong Codex config
    store = Store.open(env.store_dir)
    account = store.get_account("alice")
    assert account is not None and alice
    store.set_status(account.id, "needs_login", "refresh_token_expired")
    os.chmod(env.store_dir / "codexgw.db", 0o644)  # broken permissions
    blocker = socket.socket()  # a busy port: bound by someone else, nobody answering
    blocker.bind(("127.0.0.1", 0))
    busy = blocker.getsockname()[1]
    closed = free_port()
    try:
        result, checks = await doctor(
            env, url=f"http://127.0.0.1:{busy}", upstream=f"http://127.0.0.1:{closed}/backend-api"
        )
    finally:
        blocker.close()
    assert result.exit_code == 1
    assert (
        checks["store permissions"]["status"] == "fail"
        and "codexgw.db 0644" in checks["store permissions"]["detail"]
    )
    assert (
        checks["account alice"]["status"] == "fail"
        and checks["account alice"]["fix"] == "codexgw login device --name alice"
    )
    assert (
        checks[f"port {busy}"]["status"] == "fail" and "another program" in checks[f"port {busy}"]["detail"]
    )
    assert checks["server"]["status"] == "fail" and "no answer" in checks["server"]["detail"]
    assert (
        checks["codex config"]["status"] == "fail"
        and "points at http://127.0.0.1:1/v1" in checks["codex config"]["detail"]
    )
    assert checks["upstream"]["status"] == "fail" and "cannot connect" in checks["upstream"]["detail"]
    for check in checks.values():
        assert check["status"] != "fail" or check["fix"], check
    # the same, as text: one line each, with the fix under it
    text = await trio.to_thread.run_sync(
        lambda: CliRunner().invoke(
            main,
            ["--store", str(env.store_dir), "doctor", "--offline", "--url", f"http://127.0.0.1:{closed}"],
        )
    )
    assert text.exit_code == 1
    assert "✗ account alice: needs a new login (refresh_token_expired)" in text.stdout
    assert "    fix: codexgw login device --name alice" in text.stdout


async def test_doctor_changes_nothing(env: Env) -> None:
    env.add_account("alice")
    before = {
        p.name: (p.stat().st_mode, p.read_bytes()) for p in env.store_dir.iterdir() if p.suffix == ".db"
    }
    await doctor(env, url=f"http://127.0.0.1:{free_port()}", upstream=f"http://127.0.0.1:{free_port()}/x")
    after = {p.name: (p.stat().st_mode, p.read_bytes()) for p in env.store_dir.iterdir() if p.suffix == ".db"}
    assert before == after
