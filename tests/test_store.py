"""codexgw.store: the SQLite account store (design.md §3, codex-protocol.md §3-§4)."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from codexgw.oauth.jwt import AUTH_CLAIM, fingerprint
from codexgw.pool.health import AccountStatus
from codexgw.store import Store, StoreError, TokenSet
from codexgw.store.migrations import MIGRATIONS, migrate, schema_version
from tests.test_jwt import make_jwt

NOW = 1_800_000_000.0


def id_token(
    account_id: str | None = "acct-1",
    *,
    email: str | None = "alice@example.com",
    plan: str | None = "plus",
    user_id: str | None = None,
) -> str:
    auth: dict[str, Any] = {}
    if account_id is not None:
        auth["chatgpt_account_id"] = account_id
    if plan is not None:
        auth["chatgpt_plan_type"] = plan
    if user_id is not None:
        auth["chatgpt_user_id"] = user_id
    claims: dict[str, Any] = {AUTH_CLAIM: auth}
    if email is not None:
        claims["email"] = email
    return make_jwt(claims)


def access_token(exp: float = NOW + 3600, plan: str | None = None, tag: str = "") -> str:
    claims: dict[str, Any] = {"exp": exp, "tag": tag}
    if plan:
        claims[AUTH_CLAIM] = {"chatgpt_plan_type": plan}
    return make_jwt(claims)


def tokens(
    account_id: str | None = "acct-1",
    *,
    refresh: str = "rt_one_SECRET",
    email: str | None = "alice@example.com",
    plan: str | None = "plus",
    user_id: str | None = None,
    fallback_account_id: str | None = None,
    exp: float = NOW + 3600,
) -> TokenSet:
    return TokenSet(
        id_token=id_token(account_id, email=email, plan=plan, user_id=user_id),
        access_token=access_token(exp),
        refresh_token=refresh,
        account_id=fallback_account_id,
        last_refresh=NOW - 60,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- files ---------------------------------------------------------------------------------------


def test_open_creates_private_directory_and_database(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "store"
    Store.open(directory)
    assert mode(directory) == 0o700
    assert mode(directory / "codexgw.db") == 0o600


def test_open_tightens_loose_existing_permissions(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    Store.open(directory)
    os.chmod(directory / "codexgw.db", 0o644)
    Store.open(directory)
    assert mode(directory) == 0o700
    assert mode(directory / "codexgw.db") == 0o600


def test_wal_mode_and_private_wal_file(store: Store) -> None:
    store.upsert_account(tokens(), now=NOW)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("UPDATE accounts SET weight = 2")  # keeps the -wal file alive while open
        wal = store.path.with_name("codexgw.db-wal")
        assert wal.exists()
        assert mode(wal) == 0o600


def test_constructor_alone_creates_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(sqlite3.OperationalError):
        store.list_accounts()
    assert not (tmp_path / "nothing").exists()


def test_open_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "codexgw.db").write_text("hello, not sqlite " * 100)
    with pytest.raises(StoreError, match=r"codexgw\.db"):
        Store.open(tmp_path)


# -- migrations ----------------------------------------------------------------------------------


def test_schema_version_is_number_of_migrations(store: Store) -> None:
    assert store.schema_version() == len(MIGRATIONS) >= 1
    Store.open(store.directory)  # reopening is a no-op
    assert store.schema_version() == len(MIGRATIONS)


def test_open_refuses_newer_schema(store: Store) -> None:
    with sqlite3.connect(store.path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(StoreError, match=rf"schema version {len(MIGRATIONS) + 5}.*upgrade codexgw"):
        Store.open(store.directory)


def test_migrate_applies_only_missing_steps(store: Store) -> None:
    extra = [*MIGRATIONS, ("CREATE TABLE extra (x INTEGER)",)]
    with sqlite3.connect(store.path, isolation_level=None) as conn:
        conn.execute("BEGIN IMMEDIATE")
        assert migrate(conn, extra) == (len(MIGRATIONS), len(MIGRATIONS) + 1)
        conn.execute("COMMIT")
        assert schema_version(conn) == len(MIGRATIONS) + 1
        conn.execute("BEGIN IMMEDIATE")
        assert migrate(conn, extra) == (len(extra), len(extra))  # would fail re-creating the table
        conn.execute("COMMIT")
        conn.execute("SELECT x FROM extra").fetchall()


# -- upsert, names -------------------------------------------------------------------------------


def test_upsert_creates_account_with_identity(store: Store) -> None:
    account, created = store.upsert_account(tokens(user_id="user-1"), now=NOW)
    assert created
    assert account.name == "alice"
    assert account.chatgpt_account_id == "acct-1"
    assert (account.email, account.plan_type, account.user_id) == ("alice@example.com", "plus", "user-1")
    assert account.access_expires_at == NOW + 3600
    assert account.last_refresh == NOW - 60
    assert account.enabled and account.status == "active" and account.status_reason is None
    assert account.created_at == account.updated_at == NOW
    assert store.list_accounts() == [account]
    assert store.get_account("alice") == account
    assert store.get_account_by_id(account.id) == account
    assert store.get_account("bob") is None


def test_upsert_same_account_updates_one_row(store: Store) -> None:
    first, _ = store.upsert_account(tokens(), now=NOW)
    store.set_status(first.id, AccountStatus.NEEDS_LOGIN, "refresh_token_reused")
    second, created = store.upsert_account(tokens(refresh="rt_two", plan="pro"), now=NOW + 10)
    assert not created
    assert second.id == first.id and second.name == "alice"
    assert second.refresh_token == "rt_two" and second.plan_type == "pro"
    assert second.status == "active" and second.status_reason is None
    assert second.created_at == NOW and second.updated_at == NOW + 10
    assert len(store.list_accounts()) == 1


def test_upsert_keeps_team_members_apart(store: Store) -> None:
    """Two users of one ChatGPT Team workspace share chatgpt_account_id but not user id."""
    a, _ = store.upsert_account(tokens("team", user_id="u1"), now=NOW)
    b, created = store.upsert_account(tokens("team", user_id="u2", refresh="rt_b"), now=NOW)
    assert created and a.id != b.id
    again, created = store.upsert_account(tokens("team", user_id="u2", refresh="rt_c"), now=NOW)
    assert not created and again.id == b.id
    assert store.get_account_by_id(a.id).refresh_token == "rt_one_SECRET"


def test_default_names_are_unique(store: Store) -> None:
    names = [store.upsert_account(tokens(f"acct-{i}"), now=NOW)[0].name for i in range(3)]
    assert names == ["alice", "alice-2", "alice-3"]
    anon, _ = store.upsert_account(tokens("acct-x", email=None), now=NOW)
    assert anon.name == "account"
    odd, _ = store.upsert_account(tokens("acct-y", email="we ird/name@x.com"), now=NOW)
    assert odd.name == "we-ird-name"


def test_explicit_name_must_be_free(store: Store) -> None:
    store.upsert_account(tokens("acct-1"), name="work", now=NOW)
    before = store.generation()
    with pytest.raises(StoreError, match="name 'work' is already used by another account"):
        store.upsert_account(tokens("acct-2"), name="work", now=NOW)
    assert len(store.list_accounts()) == 1
    assert store.generation() == before


def test_explicit_name_on_update_renames(store: Store) -> None:
    first, _ = store.upsert_account(tokens(), now=NOW)
    again, created = store.upsert_account(tokens(), name="main", now=NOW)
    assert not created and again.id == first.id and again.name == "main"
    same, _ = store.upsert_account(tokens(), name="main", now=NOW)  # its own name is fine
    assert same.name == "main"


@pytest.mark.parametrize("bad", ["", " x", "x ", "a\nb", "x" * 65, "team/alice"])
def test_invalid_names_are_refused(store: Store, bad: str) -> None:
    """A '/' too: the admin API and the dashboard address an account as ``/api/accounts/<name>``,
    where a name with '/' could not be reached (the server's own logins refused it already)."""
    with pytest.raises(StoreError):
        store.upsert_account(tokens(), name=bad, now=NOW)
    assert store.list_accounts() == []


def test_account_id_falls_back_to_tokens_account_id(store: Store) -> None:
    account, _ = store.upsert_account(tokens(None, fallback_account_id="from-file"), now=NOW)
    assert account.chatgpt_account_id == "from-file"


def test_upsert_without_any_account_id_fails(store: Store) -> None:
    with pytest.raises(StoreError, match="chatgpt_account_id"):
        store.upsert_account(tokens(None), now=NOW)


def test_upsert_rejects_a_non_jwt_id_token(store: Store) -> None:
    bad = TokenSet(id_token="opaque-SECRET", access_token="a", refresh_token="r")
    with pytest.raises(StoreError) as info:
        store.upsert_account(bad, now=NOW)
    assert "SECRET" not in str(info.value)


def test_upsert_accounts_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(StoreError):
        store.upsert_accounts([(None, tokens("acct-1")), ("x\n", tokens("acct-2"))], now=NOW)
    assert store.list_accounts() == []


def test_remove_enable_rename(store: Store) -> None:
    store.upsert_account(tokens("acct-1"), now=NOW)
    store.upsert_account(tokens("acct-2"), name="bob", now=NOW)
    assert store.set_enabled("alice", False) and not store.get_account("alice").enabled
    assert store.set_enabled("alice", True) and store.get_account("alice").enabled
    assert not store.set_enabled("nobody", False)
    with pytest.raises(StoreError, match="already used"):
        store.rename_account("alice", "bob")
    with pytest.raises(StoreError, match="must not contain '/'"):
        store.rename_account("alice", "team/alice")
    assert store.rename_account("alice", "carol") and store.get_account("carol") is not None
    assert not store.rename_account("alice", "dave")
    assert store.remove_account("carol") and not store.remove_account("carol")
    assert [a.name for a in store.list_accounts()] == ["bob"]


# -- secrets -------------------------------------------------------------------------------------


def test_reprs_and_public_dict_hide_tokens(store: Store) -> None:
    t = TokenSet(
        id_token=id_token(), access_token=access_token(), refresh_token="rt_SECRET", api_key="sk-SECRET"
    )
    account, _ = store.upsert_account(t, now=NOW)
    public = account.to_public_dict()
    for text in (repr(t), repr(account), str(account), repr(public)):
        for secret in (t.id_token, t.access_token, "rt_SECRET", "sk-SECRET"):
            assert secret not in text
    assert public["fingerprints"] == {
        "id_token": fingerprint(t.id_token),
        "access_token": fingerprint(t.access_token),
        "refresh_token": fingerprint("rt_SECRET"),
        "api_key": fingerprint("sk-SECRET"),
    }
    assert public["name"] == "alice" and public["access_expires_at"] == NOW + 3600


# -- save_tokens (CAS) ---------------------------------------------------------------------------


def test_save_tokens_replaces_and_recomputes(store: Store) -> None:
    account, _ = store.upsert_account(tokens(), now=NOW)
    store.set_status(account.id, AccountStatus.NEEDS_LOGIN, "x")
    new_access = access_token(NOW + 7200, plan="pro")
    ok = store.save_tokens(
        account.id,
        access_token=new_access,
        refresh_token="rt_two",
        id_token=None,
        expected_refresh_token="rt_one_SECRET",
        now=NOW + 5,
    )
    assert ok
    saved = store.get_account_by_id(account.id)
    assert saved.access_token == new_access and saved.refresh_token == "rt_two"
    assert saved.id_token == account.id_token  # not provided: kept
    assert saved.access_expires_at == NOW + 7200
    assert saved.plan_type == "pro"
    assert saved.last_refresh == NOW + 5
    assert saved.status == "active" and saved.status_reason is None


def test_save_tokens_new_id_token_updates_identity(store: Store) -> None:
    account, _ = store.upsert_account(tokens(), now=NOW)
    new_id = id_token("acct-1", email="alice@new.example", plan="team")
    assert store.save_tokens(
        account.id,
        access_token=None,
        refresh_token=None,
        id_token=new_id,
        expected_refresh_token="rt_one_SECRET",
        now=NOW,
    )
    saved = store.get_account_by_id(account.id)
    assert (saved.email, saved.plan_type, saved.id_token) == ("alice@new.example", "team", new_id)
    assert saved.refresh_token == "rt_one_SECRET" and saved.access_token == account.access_token


def test_save_tokens_with_stale_expected_token_writes_nothing(store: Store) -> None:
    account, _ = store.upsert_account(tokens(), now=NOW)
    before = store.generation()
    ok = store.save_tokens(
        account.id,
        access_token=access_token(NOW + 9999),
        refresh_token="rt_lost",
        id_token=None,
        expected_refresh_token="rt_already_rotated",
        now=NOW + 5,
    )
    assert not ok
    assert store.get_account_by_id(account.id) == account
    assert store.generation() == before


def test_save_tokens_for_missing_account_is_false(store: Store) -> None:
    assert not store.save_tokens(
        42, access_token="a", refresh_token="r", id_token=None, expected_refresh_token="x", now=NOW
    )


# -- lease ---------------------------------------------------------------------------------------


def test_refresh_lease_semantics(store: Store) -> None:
    account, _ = store.upsert_account(tokens(), now=NOW)
    aid = account.id
    assert store.try_acquire_refresh_lease(aid, "p1", now=NOW, ttl_s=30)
    assert not store.try_acquire_refresh_lease(aid, "p2", now=NOW + 10, ttl_s=30)
    assert store.try_acquire_refresh_lease(aid, "p1", now=NOW + 20, ttl_s=30)  # re-entrant, extends
    assert not store.try_acquire_refresh_lease(aid, "p2", now=NOW + 40, ttl_s=30)  # extended to +50
    assert store.try_acquire_refresh_lease(aid, "p2", now=NOW + 50, ttl_s=30)  # expired
    store.release_refresh_lease(aid, "p1")  # not the holder: no effect
    assert not store.try_acquire_refresh_lease(aid, "p3", now=NOW + 51, ttl_s=30)
    store.release_refresh_lease(aid, "p2")
    assert store.try_acquire_refresh_lease(aid, "p3", now=NOW + 51, ttl_s=30)


def test_lease_on_missing_account_fails_and_removal_drops_lease(store: Store) -> None:
    assert not store.try_acquire_refresh_lease(99, "p1", now=NOW, ttl_s=30)
    account, _ = store.upsert_account(tokens(), now=NOW)
    assert store.try_acquire_refresh_lease(account.id, "p1", now=NOW, ttl_s=30)
    store.remove_account("alice")
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM refresh_leases").fetchone()[0] == 0


def test_lease_has_exactly_one_winner_under_contention(store: Store) -> None:
    account, _ = store.upsert_account(tokens(), now=NOW)
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def contend(owner: str) -> None:
        barrier.wait()
        if Store(store.directory).try_acquire_refresh_lease(account.id, owner, now=NOW, ttl_s=30):
            winners.append(owner)

    threads = [threading.Thread(target=contend, args=(f"o{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


# -- generation ----------------------------------------------------------------------------------


def test_generation_sees_changes_by_another_store_instance(store: Store) -> None:
    other = Store.open(store.directory)  # as another process would
    g0 = store.generation()
    account, _ = other.upsert_account(tokens(), now=NOW)
    g1 = store.generation()
    assert g1 > g0
    other.set_enabled("alice", False)
    g2 = store.generation()
    assert g2 > g1
    other.save_tokens(
        account.id, access_token=None, refresh_token="rt2", id_token=None,
        expected_refresh_token="rt_one_SECRET", now=NOW,
    )
    g3 = store.generation()
    assert g3 > g2
    other.remove_account("alice")
    assert store.generation() > g3


def test_generation_ignores_leases_and_no_op_status(store: Store) -> None:
    account, _ = store.upsert_account(tokens(), now=NOW)
    store.set_status(account.id, AccountStatus.NEEDS_LOGIN, "why")
    g = store.generation()
    store.set_status(account.id, AccountStatus.NEEDS_LOGIN, "why")
    store.try_acquire_refresh_lease(account.id, "p", now=NOW, ttl_s=1)
    store.release_refresh_lease(account.id, "p")
    assert store.generation() == g
    store.set_status(account.id, "active", None)
    assert store.generation() > g
    assert store.get_account("alice").status == "active"


# -- concurrency ---------------------------------------------------------------------------------


def test_concurrent_writers_do_not_corrupt(store: Store) -> None:
    """8 threads (each with its own Store, like separate processes) insert and rotate at once."""
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            mine = Store(store.directory)
            for i in range(10):
                account, _ = mine.upsert_account(
                    tokens(f"acct-{worker}-{i}", refresh=f"rt-{worker}-{i}-0"), now=NOW
                )
                for r in range(3):
                    assert mine.save_tokens(
                        account.id, access_token=None, refresh_token=f"rt-{worker}-{i}-{r + 1}",
                        id_token=None, expected_refresh_token=f"rt-{worker}-{i}-{r}", now=NOW,
                    )
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    g0 = store.generation()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    accounts = store.list_accounts()
    assert len(accounts) == 80
    assert len({a.name for a in accounts}) == 80
    assert all(a.refresh_token.endswith("-3") for a in accounts)
    assert store.generation() >= g0 + 80 * 4
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_another_process_sees_lease_and_bumps_generation(store: Store) -> None:
    """A real second process: its lease blocks us, its write bumps our generation."""
    import subprocess
    import sys

    account, _ = store.upsert_account(tokens(), now=NOW)
    g = store.generation()
    code = (
        "import sys; from codexgw.store import Store\n"
        "s = Store.open(sys.argv[1])\n"
        f"assert s.try_acquire_refresh_lease({account.id}, 'other-pid', now={NOW}, ttl_s=60)\n"
        "s.set_enabled('alice', False)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(store.directory)], check=True)
    assert store.generation() > g
    assert not store.get_account("alice").enabled
    assert not store.try_acquire_refresh_lease(account.id, "me", now=NOW + 1, ttl_s=60)
