"""`codexgw service …` (codexgw.cli.service) and the unit and plist it writes (codexgw.cli.units)."""

from __future__ import annotations

import os
import plistlib
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from codexgw.cli import service as service_module
from codexgw.cli.main import main
from codexgw.cli.units import ServiceSpec, systemd_quote, systemd_unit
from codexgw.store import Store
from codexgw.store.encryption import encrypt_store
from tests.test_store import NOW, tokens


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A zipapp, a store and a config file; tmp_path stands for a permanent place here."""
    monkeypatch.setattr(service_module, "temporary_dirs", lambda: [])
    monkeypatch.setattr(service_module, "systemd_running", lambda: False)
    zipapp = tmp_path / "opt" / "codexgw.pyz"
    zipapp.parent.mkdir()
    zipapp.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip archive
    config = tmp_path / "config.toml"
    config.write_text("[serve]\nport = 9000\n")
    return {"zipapp": zipapp, "store": tmp_path / "store", "config": config, "root": tmp_path}


def cli(place: dict[str, Path], *args: str, env: dict[str, str] | None = None) -> Result:
    base = ["--store", str(place["store"]), "--config", str(place["config"])]
    return CliRunner(env=env).invoke(main, [*base, *args], catch_exceptions=False)


def unit_of(result: Result) -> dict[str, list[str]]:
    """``{key: [values…]}`` of the printed unit (keys repeat: ReadWritePaths, Environment)."""
    assert result.exit_code == 0, result.output
    found: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_user_unit_contents(place: dict[str, Path]) -> None:
    codex_home = place["root"] / "codex-home"
    codex_home.mkdir()
    store = Store.open(place["store"])
    [(account, _)] = store.upsert_accounts([("alice", tokens())], now=NOW)
    store.set_linked_path(account.id, str(codex_home / "auth.json"))
    result = cli(place, "service", "install", "--dry-run", "--zipapp", str(place["zipapp"]), "--retries", "2")
    unit = unit_of(result)
    written = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user" / "codexgw.service"
    assert result.stdout.startswith(f"# {written} (dry run: nothing written)\n")
    [exec_start] = unit["ExecStart"]
    python = sys.executable
    assert exec_start == (
        f"{python} {place['zipapp']} --store {place['store'].resolve()} --config {place['config'].resolve()} "
        "serve --retries 2"
    )
    assert unit["Restart"] == ["on-failure"] and unit["Type"] == ["exec"]
    assert "SHIV_ROOT=%S/codexgw/shiv" in unit["Environment"] and unit["StateDirectory"] == ["codexgw"]
    assert (
        unit["NoNewPrivileges"] == ["yes"]
        and unit["ProtectSystem"] == ["strict"]
        and unit["PrivateTmp"] == ["yes"]
    )
    assert unit["ReadWritePaths"] == [str(place["store"].resolve()), f"-{codex_home}"]
    assert unit["WantedBy"] == ["default.target"] and "User" not in unit and "LoadCredential" not in unit
    assert not written.exists()


def test_system_unit_runs_as_the_sudo_user(place: dict[str, Path]) -> None:
    result = cli(
        place,
        "service",
        "install",
        "--system",
        "--dry-run",
        "--zipapp",
        str(place["zipapp"]),
        env={"SUDO_USER": "ada"},
    )
    unit = unit_of(result)
    assert result.stdout.startswith("# /etc/systemd/system/codexgw.service")
    assert unit["User"] == ["ada"] and unit["WantedBy"] == ["multi-user.target"]


def test_encrypted_store_needs_its_key_file_as_a_credential(place: dict[str, Path]) -> None:
    passphrase = "a passphrase of some length"
    encrypt_store(Store.open(place["store"]), passphrase)
    key = place["root"] / "store.key"
    key.write_text(passphrase + "\n")
    key.chmod(0o600)
    base = ["service", "install", "--dry-run", "--zipapp", str(place["zipapp"])]
    refused = cli(place, *base, env={"CODEXGW_STORE_KEY": passphrase})
    assert refused.exit_code == 1 and "pass --store-key-file FILE" in refused.stderr
    assert "belongs in a 0600 file" in refused.stderr and passphrase not in refused.output
    unit = unit_of(cli(place, *base, "--store-key-file", str(key), env={"CODEXGW_STORE_KEY": passphrase}))
    assert unit["LoadCredential"] == [f"codexgw-store-key:{key}"]
    from_env = unit_of(cli(place, *base, env={"CODEXGW_STORE_KEY_FILE": str(key)}))
    assert from_env["LoadCredential"] == [f"codexgw-store-key:{key}"]
    assert passphrase not in cli(place, *base, "--store-key-file", str(key)).stdout


def test_refusals_are_one_line(place: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    secret = cli(
        place, "service", "install", "--dry-run", "--zipapp", str(place["zipapp"]), "--api-key", "k-SECRET"
    )
    assert (
        secret.exit_code == 2
        and "config file's [serve] table" in secret.output
        and "k-SECRET" not in secret.output
    )
    missing = cli(place, "service", "install", "--dry-run", "--zipapp", str(place["root"] / "nope.pyz"))
    assert (
        missing.exit_code == 1
        and missing.stderr.startswith("error: zipapp ")
        and "does not exist" in missing.stderr
    )
    monkeypatch.setattr(service_module, "temporary_dirs", lambda: [place["root"]])
    temporary = cli(place, "service", "install", "--dry-run", "--zipapp", str(place["zipapp"]))
    assert temporary.exit_code == 1 and "is in a temporary directory" in temporary.stderr
    assert "copy it somewhere permanent" in temporary.stderr


def test_the_real_temporary_directories_are_refused(tmp_path: Path) -> None:
    assert any(tmp_path.resolve().is_relative_to(d) for d in service_module.temporary_dirs())


def test_install_writes_the_unit_where_no_systemd_runs(
    place: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(place["root"] / "xdg"))
    result = cli(place, "service", "install", "--zipapp", str(place["zipapp"]))
    assert result.exit_code == 0, result.output
    path = place["root"] / "xdg" / "systemd" / "user" / "codexgw.service"
    assert f"wrote {path}" in result.stdout and "systemd is not running" in result.stdout
    assert "systemctl --user enable --now codexgw" in result.stdout
    assert "Restart=on-failure" in path.read_text() and path.stat().st_mode & 0o777 == 0o600
    removed = cli(place, "service", "uninstall")
    assert removed.exit_code == 0 and not path.exists() and "the store is kept" in removed.stdout
    status = cli(place, "service", "status")
    assert (
        status.exit_code == 1
        and "not installed" in status.stdout
        and "systemd is not running" in status.stderr
    )


def test_a_unit_that_cannot_be_written(place: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = place["root"] / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    result = cli(place, "service", "install", "--zipapp", str(place["zipapp"]))
    assert result.exit_code == 1 and result.stderr.startswith(
        f"error: cannot write {blocker}/systemd/user/codexgw.service"
    )
    assert len(result.stderr.splitlines()) == 1


def test_install_enables_and_starts_with_systemd(
    place: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setenv("XDG_CONFIG_HOME", str(place["root"] / "xdg"))
    monkeypatch.setattr(service_module, "systemd_running", lambda: True)
    monkeypatch.setattr(
        service_module, "_systemctl", lambda scope, *args, check=True: calls.append((scope, *args))
    )
    result = cli(place, "service", "install", "--zipapp", str(place["zipapp"]), env={"USER": "ada"})
    assert result.exit_code == 0, result.output
    assert calls == [("user", "daemon-reload"), ("user", "enable", "--now", "codexgw")]
    assert "loginctl enable-linger ada" in result.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    spec = ServiceSpec(
        python="/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable,
        zipapp="/opt/codex gw/codexgw.pyz",
        store_dir="/home/ada/.codexgw",
        config_path="/home/ada/.config/codexgw/config.toml",
        serve_args=["--port", "9000", "--host", "0.0.0.0"],
        key_file="/home/ada/.config/codexgw/store key",
        writable=["/home/ada/.codex"],
    )
    for scope in ("user", "system"):
        text = systemd_unit(ServiceSpec(**{**spec.__dict__, "scope": scope, "run_as": "ada"}))
        assert service_module.verify_unit(text) == []
    assert service_module.verify_unit(text.replace("Restart=on-failure", "Restart=sometimes"))


def test_launch_agent_plist(place: dict[str, Path]) -> None:
    result = cli(
        place, "service", "install", "--dry-run", "--platform", "macos", "--zipapp", str(place["zipapp"])
    )
    assert result.exit_code == 0, result.output
    header, body = result.stdout.split("\n", 1)
    assert header.endswith("Library/LaunchAgents/com.codexgw.gateway.plist (dry run: nothing written)")
    doc: dict[str, Any] = plistlib.loads(body.encode())
    assert doc["Label"] == "com.codexgw.gateway" and doc["KeepAlive"] is True and doc["RunAtLoad"] is True
    assert doc["ProgramArguments"][1:4] == [str(place["zipapp"]), "--store", str(place["store"].resolve())]
    assert doc["ProgramArguments"][-1] == "serve"
    assert doc["EnvironmentVariables"]["SHIV_ROOT"].endswith("Application Support/codexgw/shiv")


@pytest.mark.parametrize(
    ("arg", "quoted"),
    [
        ("/usr/bin/python3", "/usr/bin/python3"),
        ("/opt/codex gw/x.pyz", '"/opt/codex gw/x.pyz"'),
        ("50%", "50%%"),
        ('say "hi"', '"say \\"hi\\""'),
        ("", '""'),
    ],
)
def test_systemd_quote(arg: str, quoted: str) -> None:
    assert systemd_quote(arg) == quoted
