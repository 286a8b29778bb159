"""The store's teams tables (migration step 4): users, sessions, keys, account owners, usage, audit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from codexgw.policy.keys import key_digest
from codexgw.policy.passwords import verify_password
from codexgw.store import Store, StoreError
from codexgw.store.audit import Audit, read_audit
from codexgw.store.keys import create_key, get_key, list_keys, new_secret, revoke_key, rotate_key, update_key
from codexgw.store.migrations import MIGRATIONS, migrate
from codexgw.store.models import NameTakenError, UnknownNameError
from codexgw.store.usage import add_usage, read_usage, today_totals
from codexgw.store.users import (
    add_user,
    count_users,
    create_session,
    delete_session,
    get_user,
    new_password_hash,
    remove_user,
    session_user,
    set_account_owner,
    set_password,
    set_role,
)
from tests.test_store import NOW, tokens

DAY = 1_799_971_200


@pytest.fixture(scope="module")
def hashed() -> str:
    return new_password_hash("correct horse")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def test_step_4_upgrades_a_step_3_store_keeping_its_accounts(tmp_path: Path) -> None:
    path = tmp_path / "old" / "codexgw.db"
    path.parent.mkdir()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("BEGIN IMMEDIATE")
    migrate(conn, MIGRATIONS[:3])
    conn.execute("COMMIT")
    conn.close()
    store = Store.open(path.parent)
    store.upsert_account(tokens(), name="alice", now=NOW)
    assert store.schema_version() == len(MIGRATIONS) >= 4
    assert store.get_account("alice").owner is None  # type: ignore[union-attr]


def test_users_add_conflict_role_password_and_the_last_admin(store: Store, hashed: str) -> None:
    add_user(store, "root", "admin", hashed, now=NOW)
    with pytest.raises(NameTakenError):
        add_user(store, "root", "member", hashed, now=NOW)
    with pytest.raises(StoreError, match="first user exists"):
        add_user(store, "x", "admin", hashed, now=NOW, only_if_none=True)
    add_user(store, "ada", "member", hashed, now=NOW)
    assert count_users(store) == 2
    user = get_user(store, "ada")
    assert user is not None and user.public() == {"name": "ada", "role": "member", "created_at": NOW}
    assert hashed not in repr(user) and verify_password("correct horse", user.password)
    with pytest.raises(StoreError, match="last admin"):
        set_role(store, "root", "member", now=NOW)
    with pytest.raises(StoreError, match="last admin"):
        remove_user(store, "root", now=NOW)
    assert set_role(store, "ada", "admin", now=NOW).role == "admin"  # type: ignore[union-attr]
    assert set_role(store, "root", "member", now=NOW).role == "member"  # type: ignore[union-attr]
    assert set_role(store, "nobody", "admin", now=NOW) is None
    assert not set_password(store, "nobody", hashed, now=NOW)
    with pytest.raises(StoreError, match="at least 8"):
        new_password_hash("short")


def test_removing_a_user_ends_sessions_revokes_keys_and_unowns_accounts(store: Store, hashed: str) -> None:
    add_user(store, "root", "admin", hashed, now=NOW)
    add_user(store, "ada", "member", hashed, now=NOW)
    store.upsert_account(tokens(), name="ada-acct", now=NOW)
    assert set_account_owner(store, "ada-acct", "ada", now=NOW)
    with pytest.raises(UnknownNameError) as info:
        set_account_owner(store, "ada-acct", "ghost", now=NOW)
    assert info.value.param == "owner"
    assert not set_account_owner(store, "no-acct", "ada", now=NOW)
    create_key(store, {"name": "ada-ci", "owner": "ada"}, new_secret(), now=NOW)
    create_session(store, "d1", "ada", now=NOW, expires_at=NOW + 60, address="127.0.0.1")
    assert session_user(store, "d1", now=NOW)[0].name == "ada"  # type: ignore[index]
    removed = remove_user(store, "ada", now=NOW + 1, audit=Audit("root", "user.remove", "ada"))
    assert (
        removed is not None
        and removed.keys_revoked == ["ada-ci"]
        and removed.accounts_unowned == ["ada-acct"]
    )
    assert session_user(store, "d1", now=NOW) is None
    key = get_key(store, "ada-ci")
    assert key is not None and key.revoked_at == NOW + 1 and key.owner == "ada"  # never unscoped
    assert store.get_account("ada-acct").owner is None  # type: ignore[union-attr]
    assert remove_user(store, "ada", now=NOW) is None
    assert read_audit(store)[0] == {
        "at": NOW + 1,
        "actor": "root",
        "action": "user.remove",
        "target": "ada",
        "detail": {},
    }


def test_sessions_expire_and_end_on_a_password_change(store: Store, hashed: str) -> None:
    add_user(store, "ada", "admin", hashed, now=NOW)
    create_session(store, "d1", "ada", now=NOW, expires_at=NOW + 60, address=None)
    create_session(store, "d2", "ada", now=NOW, expires_at=NOW + 60, address=None)
    assert session_user(store, "d1", now=NOW + 59) is not None
    assert session_user(store, "d1", now=NOW + 60) is None
    assert set_password(store, "ada", hashed, now=NOW, keep_session="d2")
    assert session_user(store, "d1", now=NOW) is None and session_user(store, "d2", now=NOW) is not None
    delete_session(store, "d2")
    assert session_user(store, "d2", now=NOW) is None


def test_keys_store_only_digest_and_prefix_and_check_their_references(store: Store, hashed: str) -> None:
    secret = new_secret()
    assert secret.startswith("cgw-") and len(secret) == 47
    with pytest.raises(UnknownNameError) as info:
        create_key(store, {"name": "ci", "owner": "ghost"}, secret, now=NOW)
    assert info.value.param == "owner"
    with pytest.raises(UnknownNameError) as info:
        create_key(store, {"name": "ci", "accounts": ("nope",)}, secret, now=NOW)
    assert info.value.param == "accounts"
    store.upsert_account(tokens(), name="alice", now=NOW)
    key = create_key(
        store,
        {"name": "ci", "accounts": ("alice",), "models": ("gpt-5.5",), "rpm": 5, "admin": False},
        secret,
        now=NOW,
        audit=Audit("cli:me", "key.create", "ci", {"prefix": secret[:12]}),
    )
    assert key.digest == key_digest(secret) and key.prefix == secret[:12]
    assert key.accounts == ("alice",) and key.models == frozenset({"gpt-5.5"}) and key.rpm == 5
    with pytest.raises(NameTakenError):
        create_key(store, {"name": "ci"}, new_secret(), now=NOW)
    dump = "\n".join(str(tuple(r)) for r in store._connect().execute("SELECT * FROM api_keys"))
    assert secret not in dump
    assert secret not in str(read_audit(store))


def test_key_changes_bump_the_generation_but_last_use_does_not(store: Store) -> None:
    create_key(store, {"name": "ci"}, new_secret(), now=NOW)
    before = store.generation()
    add_usage(store, {(DAY, "ci", "a", "m"): [1, 0, 1, 0, 1, 0]}, {"ci": NOW}, day=DAY)
    assert store.generation() == before
    assert get_key(store, "ci").last_used_at == NOW  # type: ignore[union-attr]
    update_key(store, "ci", {"rpm": 3}, now=NOW)
    assert store.generation() > before


def test_update_rename_revoke_rotate(store: Store) -> None:
    old_secret, new = new_secret(), new_secret()
    create_key(store, {"name": "ci"}, old_secret, now=NOW)
    create_key(store, {"name": "other"}, new_secret(), now=NOW)
    add_usage(store, {(DAY, "ci", "a", "m"): [2, 0, 10, 0, 5, 0]}, {}, day=DAY)
    with pytest.raises(NameTakenError):
        update_key(store, "ci", {"name": "other"}, now=NOW)
    renamed = update_key(store, "ci", {"name": "ci2", "tpm": None, "max_effort": "low"}, now=NOW)
    assert renamed is not None and renamed.name == "ci2" and renamed.max_effort == "low"
    assert read_usage(store, since=DAY, by="key") == [
        {
            "bucket": "ci2",
            "requests": 2,
            "errors": 0,
            "input_tokens": 10,
            "cached_tokens": 0,
            "output_tokens": 5,
            "reasoning_tokens": 0,
        }
    ]
    assert update_key(store, "nope", {"rpm": 1}, now=NOW) is None
    rotated = rotate_key(store, "ci2", new, grace_s=3600, now=NOW)
    assert (
        rotated is not None
        and rotated.digest == key_digest(new)
        and rotated.old_digest == key_digest(old_secret)
    )
    assert rotated.grace_until == NOW + 3600
    again = rotate_key(store, "ci2", new_secret(), grace_s=0, now=NOW)
    assert again is not None and again.old_digest is None and again.grace_until is None
    revoked = revoke_key(store, "ci2", now=NOW + 5)
    assert revoked is not None and revoked.revoked_at == NOW + 5
    assert revoke_key(store, "ci2", now=NOW + 9).revoked_at == NOW + 5  # type: ignore[union-attr]
    assert revoke_key(store, "nope", now=NOW) is None
    assert [k.name for k in list_keys(store)] == ["ci2", "other"]


def test_usage_adds_up_and_groups(store: Store) -> None:
    batch = {
        (DAY, "ci", "alice", "gpt-5.5"): [1, 0, 10, 2, 5, 1],
        (DAY + 3600, "ci", "bob", "gpt-5.5"): [2, 1, 20, 0, 6, 0],
        (DAY - 3600, "ops", "alice", "gpt-5.4"): [1, 0, 1, 0, 1, 0],
    }
    totals = add_usage(store, batch, {}, day=DAY)
    assert totals == {"ci": [3, 1, 30, 2, 11, 1]}
    add_usage(store, {(DAY, "ci", "alice", "gpt-5.5"): [1, 0, 10, 0, 5, 0]}, {}, day=DAY)
    assert today_totals(store, DAY)["ci"] == [4, 1, 40, 2, 16, 1]
    by_account = read_usage(store, since=DAY - 7200, by="account")
    assert [(r["bucket"], r["requests"]) for r in by_account] == [("alice", 3), ("bob", 2)]
    by_day = read_usage(store, since=DAY - 7200, by="day")
    assert [(r["bucket"], r["input_tokens"]) for r in by_day] == [(DAY - 86400, 1), (DAY, 40)]
    assert [r["bucket"] for r in read_usage(store, since=DAY, by="hour")] == [DAY, DAY + 3600]
    assert read_usage(store, since=DAY - 7200, by="model", key="ops")[0]["bucket"] == "gpt-5.4"
    mine = read_usage(store, since=0, by="key", keys=["ops"], accounts=["bob"])
    assert [(r["bucket"], r["requests"]) for r in mine] == [("ci", 2), ("ops", 1)]
    assert read_usage(store, since=0, by="key", keys=[]) == []
    with pytest.raises(ValueError):
        read_usage(store, since=0, by="week")


def test_an_account_rename_carries_its_usage_and_the_keys_narrowed_to_it(store: Store) -> None:
    store.upsert_account(tokens(), name="alice", now=NOW)
    create_key(store, {"name": "ci", "accounts": ("alice",)}, new_secret(), now=NOW)
    add_usage(
        store,
        {(DAY, "ci", "alice", "m"): [1, 0, 1, 0, 1, 0], (DAY, "ci", "carol", "m"): [5, 0, 0, 0, 0, 0]},
        {},
        day=DAY,
    )
    assert store.rename_account("alice", "carol")  # usage of an earlier "carol" is summed, not lost
    assert get_key(store, "ci").accounts == ("carol",)  # type: ignore[union-attr]
    assert [(r["bucket"], r["requests"]) for r in read_usage(store, since=0, by="account")] == [("carol", 6)]
