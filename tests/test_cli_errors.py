"""One error style for every command: ``error: …`` on stderr, exit 1 failure, 2 usage, 130 interrupted.

Also: the global ``--store`` after the command, a store that does not exist named as an error, and
hints that name the command as the user ran it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from codexgw.cli.main import main
from codexgw.config import command_name
from codexgw.store import Store
from tests.test_importers import codex_auth, write

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(main, list(args))


def test_a_usage_error_is_one_line_naming_the_help_and_exits_2(tmp_path: Path) -> None:
    result = invoke("--store", str(tmp_path), "accounts", "list", "--bogus")
    assert result.exit_code == 2
    assert result.stderr == "error: no such option '--bogus' (see `codexgw accounts list --help`)\n"
    missing = invoke("accounts", "rename", "only-one")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: missing argument 'NEW'")
    assert len(missing.stderr.splitlines()) == 1


def test_a_failure_is_one_error_line_and_exits_1(tmp_path: Path) -> None:
    Store.open(tmp_path / "s")
    result = invoke("--store", str(tmp_path / "s"), "accounts", "enable", "nobody")
    assert (result.exit_code, result.stderr) == (1, "error: no account named 'nobody'\n")


def test_ctrl_c_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codexgw.cli import accounts

    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(accounts, "run_refresh", interrupted)
    Store.open(tmp_path / "s")
    result = invoke("--store", str(tmp_path / "s"), "accounts", "refresh")
    assert (result.exit_code, result.stderr.strip()) == (130, "error: interrupted")


def test_an_unexpected_error_is_one_line_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codexgw.cli import accounts

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("something odd")

    monkeypatch.setattr(accounts, "run_refresh", broken)
    Store.open(tmp_path / "s")
    result = invoke("--store", str(tmp_path / "s"), "accounts", "refresh")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: unexpected RuntimeError: something odd (a bug? CODEXGW_TRACEBACK=1 shows where)\n"
    )


def test_store_after_the_command(tmp_path: Path) -> None:
    """``accounts list --store X`` works as ``--store X accounts list``; after the command it wins."""
    auth = write(tmp_path, codex_auth())
    store = tmp_path / "s"
    imported = invoke("accounts", "import", str(auth), "--store", str(store))
    assert imported.exit_code == 0, imported.stderr
    listed = invoke(
        "--store", str(tmp_path / "elsewhere"), "accounts", "list", "--json", "--store", str(store)
    )
    assert listed.exit_code == 0, listed.stderr
    assert '"name": "alice"' in listed.stdout
    for args in (["status", "--offline"], ["accounts", "strategy"], ["accounts", "usage", "--json"]):
        result = invoke(*args, "--store", str(tmp_path / "typo"))
        assert result.exit_code == 1, (args, result.output)
        assert f"error: no store at {tmp_path / 'typo'}" in result.stderr


def test_a_store_that_does_not_exist_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    for args in (
        ["accounts", "list"],
        ["accounts", "disable", "x"],
        ["accounts", "pin", "x"],
        ["accounts", "refresh"],
        ["serve", "--port", "0"],
    ):
        result = invoke("--store", str(missing), *args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith(
            f"error: no store at {missing} yet (or a mistyped --store or CODEXGW_HOME)"
        )
        assert "codexgw login pkce" in result.stderr and "codexgw accounts import" in result.stderr
        assert not missing.exists(), args  # nothing was created


def test_import_creates_the_store(tmp_path: Path) -> None:
    auth = write(tmp_path, codex_auth())
    result = invoke("--store", str(tmp_path / "new"), "accounts", "import", str(auth))
    assert result.exit_code == 0 and (tmp_path / "new").is_dir()


@pytest.mark.parametrize(
    ("argv0", "name"),
    [
        ("./codexgw.pyz", "./codexgw.pyz"),
        ("codexgw.pyz", "./codexgw.pyz"),
        ("/opt/bin/codexgw.pyz", "/opt/bin/codexgw.pyz"),
        ("/work/.venv/bin/codexgw", "codexgw"),
        ("/work/codexgw/__main__.py", "python -m codexgw"),
    ],
)
def test_command_name(argv0: str, name: str) -> None:
    assert command_name(argv0) == name


def test_hints_name_the_command_as_run(tmp_path: Path) -> None:
    """Run as ``python -m codexgw``, usage and hints say so (a zipapp says ``./codexgw.pyz``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEXGW_")}
    result = subprocess.run(
        [sys.executable, "-m", "codexgw", "--store", str(tmp_path / "none"), "accounts", "list"],
        capture_output=True, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert "add the first account with: python -m codexgw login pkce" in result.stderr
