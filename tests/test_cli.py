"""codexgw.cli.main: accounts import/list and serve's option checks, through click's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from codexgw.cli.common import (
    format_countdown,
    format_duration,
    format_expiry,
    format_since,
    format_validity,
)
from codexgw.cli.main import main
from codexgw.store import Store
from tests.test_importers import ACCESS, ID_TOKEN, REFRESH, codex_auth, write
from tests.test_store import access_token, id_token

SECRETS = (ID_TOKEN, ACCESS, REFRESH)


def run(store_dir: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner(env=env).invoke(main, ["--store", str(store_dir), *args], catch_exceptions=False)
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr
    return result


@pytest.fixture
def auth_json(tmp_path: Path) -> Path:
    return write(tmp_path, codex_auth())


def test_import_then_list(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    expired = access_token(exp=1_000_000_000)
    auth_json = write(tmp_path, codex_auth(tokens_access_token=expired))
    result = run(store_dir, "accounts", "import", str(auth_json))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "imported alice (alice@example.com, plus)\n"
    listed = run(store_dir, "accounts", "list")
    assert listed.exit_code == 0
    header, row = listed.stdout.strip().splitlines()
    assert header.split()[:4] == ["name", "email", "plan", "status"]
    cells = row.split()
    assert cells[:6] == ["alice", "alice@example.com", "plus", "active", "yes", "expired"]
    assert cells[6].endswith("d") and cells[7] == "ago"  # exp 2001-09-09: days ago
    assert cells[8].endswith("d") and cells[9] == "ago"  # last_refresh 2026-04-25
    assert expired not in listed.stdout


def test_list_json_has_public_fields_only(tmp_path: Path, auth_json: Path) -> None:
    store_dir = tmp_path / "store"
    run(store_dir, "accounts", "import", str(auth_json), "--name", "work")
    result = run(store_dir, "accounts", "list", "--json")
    [entry] = json.loads(result.stdout)
    assert entry["name"] == "work" and entry["email"] == "alice@example.com"
    assert entry["chatgpt_account_id"] == "acct-1"
    assert set(entry["fingerprints"]) == {"id_token", "access_token", "refresh_token", "api_key"}
    assert not {"id_token", "access_token", "refresh_token", "api_key"} & set(entry)


def test_list_empty_store(tmp_path: Path) -> None:
    Store.open(tmp_path / "store")
    result = run(tmp_path / "store", "accounts", "list")
    assert result.exit_code == 0 and "no accounts" in result.stdout
    assert json.loads(run(tmp_path / "store", "accounts", "list", "--json").stdout) == []


def test_reimport_updates(tmp_path: Path, auth_json: Path) -> None:
    store_dir = tmp_path / "store"
    run(store_dir, "accounts", "import", str(auth_json))
    newer = write(tmp_path, codex_auth(tokens_refresh_token="rt_NEWER_SECRET"), "newer.json")
    result = run(store_dir, "accounts", "import", str(newer))
    assert result.exit_code == 0
    assert result.stdout == "updated alice (alice@example.com, plus)\n"
    assert "rt_NEWER_SECRET" not in result.stdout
    [account] = Store.open(store_dir).list_accounts()
    assert account.refresh_token == "rt_NEWER_SECRET"


@pytest.mark.parametrize(
    "content",
    ["{not json", {"OPENAI_API_KEY": "sk-x"}, codex_auth(tokens_id_token=f"opaque-{REFRESH}")],
)
def test_import_of_broken_file_fails_and_changes_nothing(
    tmp_path: Path, auth_json: Path, content: Any
) -> None:
    store_dir = tmp_path / "store"
    run(store_dir, "accounts", "import", str(auth_json))
    store = Store.open(store_dir)
    before = (store.list_accounts(), store.generation())
    broken = write(tmp_path, content, "broken.json")
    result = run(store_dir, "accounts", "import", str(broken))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {broken}: "), result.stderr
    assert (store.list_accounts(), store.generation()) == before


def test_import_name_clash_is_an_error(tmp_path: Path, auth_json: Path) -> None:
    store_dir = tmp_path / "store"
    run(store_dir, "accounts", "import", str(auth_json), "--name", "work")
    other = codex_auth(tokens_id_token=id_token("acct-2", email="bob@example.com"))
    result = run(store_dir, "accounts", "import", str(write(tmp_path, other, "bob.json")), "--name", "work")
    assert result.exit_code == 1
    assert "name 'work' is already used by another account" in result.stderr
    assert [a.name for a in Store.open(store_dir).list_accounts()] == ["work"]


def test_import_missing_file(tmp_path: Path) -> None:
    result = run(tmp_path / "store", "accounts", "import", str(tmp_path / "nope.json"))
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'nope.json'}: no such file\n"


def test_import_accounts_json_with_several_logins(tmp_path: Path) -> None:
    entries = [
        {"name": "one", "id_token": id_token("a1"), "access_token": ACCESS, "refresh_token": "r1"},
        {"id_token": id_token("a2", email="bob@example.com"), "access_token": ACCESS, "refresh_token": "r2"},
    ]
    path = write(tmp_path, {"accounts": entries}, "accounts.json")
    result = run(tmp_path / "store", "accounts", "import", str(path))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "imported one (alice@example.com, plus)",
        "imported bob (bob@example.com, plus)",
    ]
    refused = run(tmp_path / "store", "accounts", "import", str(path), "--name", "x")
    assert refused.exit_code == 2 and "one login" in refused.stderr


def test_store_dir_from_env(tmp_path: Path, auth_json: Path) -> None:
    result = CliRunner(env={"CODEXGW_HOME": str(tmp_path / "envstore")}).invoke(
        main, ["accounts", "import", str(auth_json)]
    )
    assert result.exit_code == 0
    assert (tmp_path / "envstore" / "codexgw.db").exists()


def test_list_shows_status_reason_and_disabled(tmp_path: Path, auth_json: Path) -> None:
    store_dir = tmp_path / "store"
    run(store_dir, "accounts", "import", str(auth_json))
    store = Store.open(store_dir)
    account = store.get_account("alice")
    store.set_status(account.id, "needs_login", "refresh_token_reused")
    assert run(store_dir, "accounts", "disable", "alice").exit_code == 0
    out = run(store_dir, "accounts", "list").stdout
    assert "needs_login (refresh_token_reused)" in out
    assert " no " in out
    assert run(store_dir, "accounts", "remove", "ghost").exit_code == 1


def test_format_expiry_and_since() -> None:
    assert format_expiry(1000 + 42 * 60 + 5, 1000) == "in 42m"
    assert format_expiry(1000 - 3 * 3600 - 1, 1000) == "expired 3h ago"
    assert format_expiry(None, 1000) == "unknown"
    assert format_since(1000 - 30, 1000) == "30s ago"
    assert format_since(1000 - 2 * 86400, 1000) == "2d ago"
    assert format_since(None, 1000) == "never"


def test_format_duration_coarse_and_fine() -> None:
    """One formatter for both styles: ``accounts list`` shows the largest unit, ``status`` two."""
    cases = [(-5, "0s", "0s"), (59.9, "59s", "59s"), (61, "1m", "1m"), (3 * 3600 + 5 * 60, "3h", "3h05m")]
    cases.append((2 * 86400 + 4 * 3600 + 59, "2d", "2d04h"))
    for seconds, coarse, fine in cases:
        assert (format_duration(seconds), format_duration(seconds, fine=True)) == (coarse, fine)


def test_format_validity_and_countdown() -> None:
    assert format_validity(1000 + 25 * 3600, 1000) == "valid for 1500m"
    assert format_validity(1000 + 59, 1000) == "valid for 0m"
    assert format_validity(1000, 1000) == "expired"
    assert format_validity(None, 1000) == "expiry unknown"
    assert [format_countdown(s) for s in (899.7, 61, 0, -3)] == ["14:59", "01:01", "00:00", "00:00"]


def test_fresh_token_shows_time_left(tmp_path: Path) -> None:
    import time

    doc = codex_auth(tokens_access_token=access_token(exp=time.time() + 42 * 60 + 30))
    run(tmp_path / "store", "accounts", "import", str(write(tmp_path, doc)))
    assert "in 42m" in run(tmp_path / "store", "accounts", "list").stdout


# -- serve ---------------------------------------------------------------------------------------


def test_serve_refuses_public_host_without_api_key(tmp_path: Path) -> None:
    result = run(tmp_path / "store", "serve", "--host", "0.0.0.0", env={"CODEXGW_API_KEY": ""})
    assert result.exit_code == 2
    assert "--api-key" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "source"),
    [(["--api-key", " "], {}, "--api-key"), (["--api-key", "short-key"], {}, "--api-key"),
     ([], {"CODEXGW_API_KEY": "with spaces in it, long enough"}, "CODEXGW_API_KEY"),
     (["--api-key", "caf\u00e9-0123456789abcdef"], {}, "--api-key")],
)  # fmt: skip
def test_serve_refuses_a_weak_api_key_naming_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], source: str
) -> None:
    """Issue 16: a key of ``" "`` was accepted on 0.0.0.0."""
    from codexgw.cli import serve as server_module

    monkeypatch.setattr(server_module, "run", lambda settings: None)
    Store.open(tmp_path / "store")
    result = run(tmp_path / "store", "serve", "--host", "0.0.0.0", *args, env=env)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "at least 16 visible ASCII characters" in lines[0] and source in lines[0]


def test_serve_counts_only_loopback_addresses_as_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host name beginning with ``127.`` is not loopback (issue 16): it needs a key."""
    from codexgw.config import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"]))
    assert not any(map(is_loopback, ["127.example.com", "127.0.0.1.nip.io", "0.0.0.0", "::", "10.0.0.1", ""]))
    from codexgw.cli import serve as server_module

    monkeypatch.setattr(server_module, "run", lambda settings: None)
    Store.open(tmp_path / "store")
    result = run(tmp_path / "store", "serve", "--host", "127.example.invalid", env={"CODEXGW_API_KEY": ""})
    assert result.exit_code == 2 and "refusing to listen on 127.example.invalid" in result.stderr


def test_serve_needs_cert_and_key_together(tmp_path: Path) -> None:
    cert = write(tmp_path, "cert", "cert.pem")
    result = run(tmp_path / "store", "serve", "--certfile", str(cert))
    assert result.exit_code == 2 and "--keyfile" in result.stderr


def test_serve_builds_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codexgw.cli import serve as server_module

    seen: list[Any] = []
    monkeypatch.setattr(server_module, "run", seen.append)
    Store.open(tmp_path / "store")
    result = run(
        tmp_path / "store",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--retries",
        "1",
        "--upstream",
        "http://127.0.0.1:9/backend-api/",
        "--log-format",
        "json",
        env={"CODEXGW_API_KEY": "gw-key-0123456789", "CODEXGW_AUTH_URL": "http://127.0.0.1:9/"},
    )
    assert result.exit_code == 0, result.stderr
    [settings] = seen
    assert (settings.host, settings.port, settings.retries) == ("0.0.0.0", 0, 1)
    assert settings.api_key == "gw-key-0123456789"
    assert settings.upstream_url == "http://127.0.0.1:9/backend-api"
    assert settings.auth_url == "http://127.0.0.1:9"
    assert settings.store_dir == tmp_path / "store"
    assert settings.log_format == "json"
    assert settings.dashboard is True


def test_serve_no_dashboard_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codexgw.cli import serve as server_module

    seen: list[Any] = []
    monkeypatch.setattr(server_module, "run", seen.append)
    Store.open(tmp_path / "store")
    result = run(tmp_path / "store", "serve", "--port", "0", "--no-dashboard")
    assert result.exit_code == 0, result.stderr
    assert seen[0].dashboard is False
    from_env = run(tmp_path / "store", "serve", "--port", "0", env={"CODEXGW_DASHBOARD": "off"})
    assert from_env.exit_code == 0, from_env.stderr
    assert seen[1].dashboard is False
    assert "--dashboard / --no-dashboard" in run(tmp_path / "store", "serve", "--help").stdout


def test_help_and_version_stay_light() -> None:
    code = (
        "import sys; from codexgw.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('trio', 'rich', 'httpx', 'sqlite3', 'codexgw.serve') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    version = subprocess.run(
        [sys.executable, "-m", "codexgw", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == "codexgw, version 0.1.0"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts(shell: str) -> None:
    """``_CODEXGW_COMPLETE=<shell>_source codexgw`` prints click's completion script (README)."""
    result = subprocess.run(
        [sys.executable, "-m", "codexgw"],
        env={**__import__("os").environ, "_CODEXGW_COMPLETE": f"{shell}_source"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "_CODEXGW_COMPLETE" in result.stdout
