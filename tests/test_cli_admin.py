"""``codexgw settings`` and ``users set NAME --role`` (the dashboard's Settings and Users actions on
the command line, issue 13)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from codexgw.cli.main import main
from codexgw.store.audit import read_audit
from codexgw.store.settings import read_settings
from codexgw.store.sqlite import Store
from codexgw.store.users import add_user, get_user, new_password_hash


def run(store_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(store_dir), *args], catch_exceptions=False)


def test_settings_show_then_change_and_audit(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = Store.open(store_dir)
    shown = run(store_dir, "settings")
    assert shown.exit_code == 0, shown.output
    assert "probe_interval_s     (serve flag)" in shown.stdout
    changed = run(store_dir, "settings", "--probe-interval", "120", "--reasoning-mode", "think")
    assert changed.exit_code == 0, changed.output
    assert "probe_interval_s     120.0" in changed.stdout and "reasoning_mode       think" in changed.stdout
    assert read_settings(store) == {"probe_interval_s": 120.0, "reasoning_mode": "think"}
    [entry] = read_audit(store)
    assert (entry["action"], entry["detail"]) == (
        "settings.update",
        {"reasoning_mode": "think", "probe_interval_s": 120.0},
    )
    assert entry["actor"].startswith("cli:")
    assert run(store_dir, "settings", "--reasoning-mode", "loud").exit_code == 2
    assert run(store_dir, "settings", "--default-cooldown", "-1").exit_code == 2


def test_users_set_role_keeps_one_admin(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = Store.open(store_dir)
    for name, role in (("root", "admin"), ("mia", "member")):
        add_user(store, name, role, new_password_hash("password-123"), now=1.0)
    promoted = run(store_dir, "users", "set", "mia", "--role", "admin")
    assert (promoted.exit_code, promoted.stdout) == (0, "mia is now admin\n")
    assert get_user(store, "mia").role == "admin"
    assert read_audit(store)[0]["action"] == "user.update"
    assert run(store_dir, "users", "set", "mia", "--role", "member").exit_code == 0
    last = run(store_dir, "users", "set", "root", "--role", "member")
    assert last.exit_code == 1 and "last admin" in last.stderr
    assert get_user(store, "root").role == "admin"
    assert run(store_dir, "users", "set", "nobody", "--role", "admin").exit_code == 1
