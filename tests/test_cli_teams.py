"""``codexgw users …``, ``keys …``, ``audit`` and ``accounts set --owner`` through click's CliRunner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from codexgw.cli.main import main
from codexgw.policy.keys import key_digest
from codexgw.store import Store
from codexgw.store.keys import get_key
from codexgw.store.usage import add_usage
from codexgw.store.users import get_user
from tests.test_store import NOW, tokens

SECRET = re.compile(r"cgw-[A-Za-z0-9_-]{43}")


def run(store_dir: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--store", str(store_dir), *args], input=input, catch_exceptions=False)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    Store.open(path).upsert_account(tokens(), name="alice-acct", now=NOW)
    return path


def test_users_add_list_passwd_remove(store_dir: Path) -> None:
    added = run(
        store_dir, "users", "add", "root", "--role", "admin", "--password-stdin", input="hunter2hunter2\n"
    )
    assert added.exit_code == 0 and added.output == "added admin root\n"
    assert run(store_dir, "users", "add", "ada", "--password-stdin", input="ada-password\n").exit_code == 0
    prompted = run(store_dir, "users", "add", "bob", input="bob-password\nbob-password\n")
    assert prompted.exit_code == 0 and "bob-password" not in prompted.output
    listed = run(store_dir, "users", "list", "--json")
    assert [(u["name"], u["role"]) for u in json.loads(listed.output)] == [
        ("ada", "member"),
        ("bob", "member"),
        ("root", "admin"),
    ]
    assert "hunter2" not in run(store_dir, "users", "list").output
    dup = run(store_dir, "users", "add", "ada", "--password-stdin", input="whatever123\n")
    assert dup.exit_code == 1 and dup.output.startswith("error: ") and "exists" in dup.output
    short = run(store_dir, "users", "add", "eve", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "at least 8" in short.output
    bad_name = run(store_dir, "users", "add", " eve", "--password-stdin", input="long-enough\n")
    assert bad_name.exit_code == 2
    before = get_user(Store.open(store_dir), "ada").password  # type: ignore[union-attr]
    assert run(store_dir, "users", "passwd", "ada", "--password-stdin", input="new-password\n").exit_code == 0
    assert get_user(Store.open(store_dir), "ada").password != before  # type: ignore[union-attr]
    assert (
        run(store_dir, "users", "passwd", "nobody", "--password-stdin", input="x" * 9 + "\n").exit_code == 1
    )
    last = run(store_dir, "users", "remove", "root")
    assert last.exit_code == 1 and "last admin" in last.output
    assert (
        run(store_dir, "accounts", "set", "alice-acct", "--owner", "ada").output == "alice-acct: owner ada\n"
    )
    assert run(store_dir, "keys", "create", "ada-ci", "--owner", "ada").exit_code == 0
    removed = run(store_dir, "users", "remove", "ada")
    assert removed.exit_code == 0
    assert removed.output == "removed ada\nrevoked their keys: ada-ci\nnow in the shared pool: alice-acct\n"
    assert run(store_dir, "users", "remove", "ada").exit_code == 1


def test_keys_create_prints_the_secret_once_and_stores_its_digest(store_dir: Path) -> None:
    created = run(store_dir, "keys", "create", "ci", "--rpm", "60", "--models", "gpt-5.5,gpt-5.4", "--expires", "30d",
                  "--accounts", "alice-acct", "--max-effort", "medium", "--reasoning-mode", "think")  # fmt: skip
    assert created.exit_code == 0, created.output
    (secret,) = SECRET.findall(created.output)
    key = get_key(Store.open(store_dir), "ci")
    assert key is not None and key.digest == key_digest(secret) and key.prefix == secret[:12]
    assert (
        key.rpm == 60 and key.models == frozenset({"gpt-5.5", "gpt-5.4"}) and key.accounts == ("alice-acct",)
    )
    listed = run(store_dir, "keys", "list")
    assert secret not in listed.output and secret[:12] in listed.output and "rpm 60" in listed.output
    shown = json.loads(run(store_dir, "keys", "list", "--json").output)
    assert shown[0]["prefix"] == secret[:12] and shown[0]["status"] == "active" and secret not in str(shown)
    audit = run(store_dir, "audit", "--json")
    assert json.loads(audit.output)[0]["action"] == "key.create" and secret not in audit.output


def test_keys_set_revoke_rotate(store_dir: Path) -> None:
    run(store_dir, "keys", "create", "ci", "--rpm", "5")
    changed = run(store_dir, "keys", "set", "ci", "--rpm", "0", "--tpm", "1000", "--name", "ci2")
    assert changed.exit_code == 0 and changed.output.startswith("ci2 ") and "rpm" not in changed.output
    assert run(store_dir, "keys", "set", "ci2").exit_code == 2  # nothing to change
    assert run(store_dir, "keys", "set", "nope", "--rpm", "1").exit_code == 1
    past = run(store_dir, "keys", "set", "ci2", "--expires", "2020-01-01")
    assert past.exit_code == 0 and "expired" in past.output  # a past date expires the key at once
    rotated = run(store_dir, "keys", "rotate", "ci2", "--grace", "1h")
    assert rotated.exit_code == 0 and "1h more" in rotated.output and len(SECRET.findall(rotated.output)) == 1
    key = get_key(Store.open(store_dir), "ci2")
    assert key is not None and key.old_digest is not None and key.grace_until is not None
    assert run(store_dir, "keys", "revoke", "ci2").output.startswith("revoked ci2 (cgw-")
    assert run(store_dir, "keys", "rotate", "ci2").exit_code == 1  # revoked: create a new one
    assert run(store_dir, "keys", "revoke", "nope").exit_code == 1


@pytest.mark.parametrize(
    "args",
    [
        ("--rpm", "-1"),
        ("--rpm", "many"),
        ("--expires", "soon"),
        ("--expires", "2027-13-01"),
        ("--max-effort", "huge"),
        ("--accounts", ","),
    ],
)
def test_malformed_values_exit_2_with_one_line(store_dir: Path, args: tuple[str, ...]) -> None:
    result = run(store_dir, "keys", "create", "ci", *args)
    assert result.exit_code == 2
    assert get_key(Store.open(store_dir), "ci") is None  # nothing half-written


def test_refused_operations_exit_1(store_dir: Path) -> None:
    for args in (("--owner", "ghost"), ("--accounts", "no-such-account")):
        result = run(store_dir, "keys", "create", "ci", *args)
        assert result.exit_code == 1 and result.output.startswith("error: no ")
    assert run(store_dir, "keys", "create", "ci").exit_code == 0
    dup = run(store_dir, "keys", "create", "ci")
    assert dup.exit_code == 1 and "exists" in dup.output
    assert run(store_dir, "accounts", "set", "alice-acct", "--owner", "ghost").exit_code == 1
    assert run(store_dir, "accounts", "set", "alice-acct").exit_code == 2
    assert run(store_dir, "keys", "usage", "nope").exit_code == 1
    assert run(store_dir, "keys", "usage", "--since", "5w").exit_code == 2


def test_keys_usage_groups_the_stored_counters(store_dir: Path) -> None:
    import time

    run(store_dir, "keys", "create", "ci")
    hour = int(time.time() // 3600) * 3600
    add_usage(
        Store.open(store_dir), {(hour, "ci", "alice-acct", "gpt-5.5"): [3, 1, 100, 20, 40, 10]}, {}, day=0
    )
    table = run(store_dir, "keys", "usage", "ci", "--by", "model")
    assert table.exit_code == 0
    assert table.output.splitlines()[1].split() == ["gpt-5.5", "3", "1", "100", "20", "40", "10"]
    data = json.loads(run(store_dir, "keys", "usage", "--by", "account", "--json").output)
    assert data["by"] == "account" and data["data"][0]["bucket"] == "alice-acct"


def test_accounts_set_owner_and_no_owner(store_dir: Path) -> None:
    run(store_dir, "users", "add", "ada", "--password-stdin", input="ada-password\n")
    assert run(store_dir, "accounts", "set", "alice-acct", "--owner", "ada", "--weight", "2").exit_code == 0
    account = Store.open(store_dir).get_account("alice-acct")
    assert account is not None and account.owner == "ada" and account.weight == 2
    assert (
        run(store_dir, "accounts", "set", "alice-acct", "--no-owner").output
        == "alice-acct: no owner (shared pool)\n"
    )
    assert Store.open(store_dir).get_account("alice-acct").owner is None  # type: ignore[union-attr]
    entries = json.loads(run(store_dir, "audit", "--json").output)
    assert [e["action"] for e in entries][:2] == ["account.update", "account.update"]
    assert all(e["actor"].startswith("cli:") for e in entries)
    assert run(store_dir, "audit", "--since", "bad").exit_code == 2


def test_the_account_and_pool_commands_write_audit_entries(store_dir: Path) -> None:
    """Every change through the CLI is audited as cli:<os user>, the read-only commands are not."""
    assert run(store_dir, "accounts", "disable", "alice-acct").exit_code == 0
    assert run(store_dir, "accounts", "rename", "alice-acct", "alice").exit_code == 0
    assert run(store_dir, "accounts", "pin", "alice").exit_code == 0
    assert run(store_dir, "accounts", "strategy").exit_code == 0  # shown, not changed
    assert run(store_dir, "accounts", "strategy", "quota").exit_code == 0
    assert run(store_dir, "accounts", "list").exit_code == 0
    assert run(store_dir, "accounts", "enable", "nobody").exit_code != 0  # failed: nothing written
    entries = json.loads(run(store_dir, "audit", "--json").output)
    assert [(e["action"], e["target"]) for e in reversed(entries)] == [
        ("account.disable", "alice-acct"),
        ("account.rename", "alice-acct"),
        ("pool.pin", "alice"),
        ("pool.strategy", "quota"),
    ]
    assert entries[2]["detail"] == {"new": "alice"} and all(e["actor"].startswith("cli:") for e in entries)
