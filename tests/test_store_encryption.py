"""Encryption at rest (codexgw.store.crypto, codexgw.store.encryption, `codexgw store …`): no token in
clear anywhere in the store directory, a wrong or missing key refused in one line with nothing
written, and an encrypted store used by a running server and the CLI alike."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner, Result

from codexgw.cli.main import main
from codexgw.store import Store, StoreError
from codexgw.store.crypto import PREFIX, Cipher, new_key_record, open_key
from codexgw.store.encryption import decrypt_store, encrypt_store
from codexgw.store.responses import ResponseStore, StoredResponse
from tests.conftest import Env, in_thread
from tests.fakes import Text
from tests.test_store import NOW, tokens

PASSPHRASE = "correct horse battery staple"
CONVERSATION = "the-secret-plan-of-the-conversation"


def store_bytes(directory: Path) -> bytes:
    """Everything in the store directory, files and their WAL/SHM companions, concatenated."""
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def fragments(secret: str) -> list[bytes]:
    """The secret, and for a long one a 20-character piece of its middle (no half-written copy either)."""
    middle = len(secret) // 2
    return [secret.encode()] + ([secret[middle - 10 : middle + 10].encode()] if len(secret) >= 30 else [])


def assert_nowhere(directory: Path, *secrets: str) -> None:
    blob = store_bytes(directory)
    for secret in secrets:
        for fragment in fragments(secret):
            assert fragment not in blob, f"{fragment[:12]!r}… found in clear under {directory}"


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def populated(tmp_path: Path) -> tuple[Store, list[str]]:
    """A store with two accounts, one removed account, and a stored conversation; its secrets."""
    store = Store.open(tmp_path / "store")
    alice = tokens("acct-1", refresh="rt_alice_REFRESH_SECRET_0123456789")
    bob = tokens("acct-2", refresh="rt_bob_REFRESH_SECRET_0123456789", email="bob@example.com")
    gone = tokens("acct-3", refresh="rt_gone_REFRESH_SECRET_0123456789", email="gone@example.com")
    store.upsert_account(alice, name="alice", now=NOW)
    store.upsert_account(bob, name="bob", now=NOW)
    store.upsert_account(gone, name="gone", now=NOW)
    assert store.remove_account("gone")
    responses = ResponseStore.open(store.directory)
    responses.put(StoredResponse("resp_1", None, 1, [{"role": "user", "content": CONVERSATION}], []), now=NOW)
    secrets = [t.refresh_token for t in (alice, bob, gone)] + [t.access_token for t in (alice, bob)]
    secrets += [alice.id_token, CONVERSATION]
    return store, secrets


def test_cipher_round_trip_binds_the_column() -> None:
    record, cipher = new_key_record(PASSPHRASE)
    sealed = cipher.encrypt("rt_SECRET", "accounts.refresh_token")
    assert sealed.startswith(PREFIX) and "rt_SECRET" not in sealed
    assert sealed != cipher.encrypt("rt_SECRET", "accounts.refresh_token")  # a fresh nonce each time
    assert cipher.decrypt(sealed, "accounts.refresh_token") == "rt_SECRET"
    with pytest.raises(StoreError, match="does not decrypt"):
        cipher.decrypt(sealed, "accounts.access_token")
    assert open_key(record, PASSPHRASE, where="s").decrypt(sealed, "accounts.refresh_token") == "rt_SECRET"
    with pytest.raises(StoreError, match="wrong store key for s"):
        open_key(record, PASSPHRASE + "!", where="s")
    with pytest.raises(StoreError, match="at least 16 characters"):
        new_key_record("short")
    assert "key" in repr(Cipher(b"k" * 32)) and "kkkk" not in repr(Cipher(b"k" * 32))


def test_encrypt_leaves_no_token_in_clear(tmp_path: Path) -> None:
    store, secrets = populated(tmp_path)
    assert all(s.encode() in store_bytes(store.directory) for s in secrets[:2])  # the check can fail
    accounts, responses = encrypt_store(store, PASSPHRASE)
    assert (accounts, responses) == (2, 1)
    assert_nowhere(store.directory, *secrets)
    assert {p.name for p in store.directory.iterdir()} <= {
        "codexgw.db", "codexgw.db-wal", "codexgw.db-shm", "responses.db", "responses.db-wal", "responses.db-shm"
    }  # fmt: skip
    reopened = Store.open(store.directory, passphrase=PASSPHRASE)
    assert reopened.encrypted
    alice = reopened.get_account("alice")
    assert alice is not None and alice.refresh_token == secrets[0] and alice.email == "alice@example.com"
    history = ResponseStore.open(store.directory, opener=reopened.opener).expand("resp_1", now=NOW)
    assert history is not None and history.items[0]["content"] == CONVERSATION
    assert encrypt_store(reopened, PASSPHRASE) == (0, 0)  # again: only scrubs


def test_writes_to_an_encrypted_store_stay_encrypted(tmp_path: Path) -> None:
    store, _ = populated(tmp_path)
    encrypt_store(store, PASSPHRASE)
    store = Store.open(store.directory, passphrase=PASSPHRASE)
    carol = tokens("acct-9", refresh="rt_carol_REFRESH_SECRET_0123456789", email="carol@example.com")
    [(account, created)] = store.upsert_accounts([("carol", carol)], now=NOW)
    assert created and account.refresh_token == carol.refresh_token
    alice = store.get_account("alice")
    assert alice is not None
    assert store.save_tokens(
        alice.id,
        access_token=None,
        refresh_token="rt_alice_ROTATED_SECRET_0123456789",
        id_token=None,
        expected_refresh_token=alice.refresh_token,  # compared with the decrypted value
        now=NOW + 1,
    )
    ResponseStore.open(store.directory, opener=store.opener).put(
        StoredResponse("resp_2", "resp_1", 1, [{"role": "user", "content": "second-SECRET-turn"}], []),
        now=NOW,
    )
    with __import__("sqlite3").connect(store.path) as conn:
        values = [
            v
            for row in conn.execute("SELECT refresh_token, access_token, id_token FROM accounts")
            for v in row
        ]
    assert values and all(v.startswith(PREFIX) for v in values)
    assert_nowhere(
        store.directory, "rt_alice_ROTATED_SECRET_0123456789", carol.refresh_token, "second-SECRET-turn"
    )
    assert store.get_account("alice").refresh_token == "rt_alice_ROTATED_SECRET_0123456789"  # type: ignore[union-attr]


def test_missing_or_wrong_key_is_refused_and_nothing_written(tmp_path: Path) -> None:
    store, _ = populated(tmp_path)
    encrypt_store(store, PASSPHRASE)
    before = digest(store.directory)
    with pytest.raises(StoreError) as missing:
        Store.open(store.directory)
    assert "is encrypted; set CODEXGW_STORE_KEY" in str(missing.value) and "\n" not in str(missing.value)
    with pytest.raises(StoreError) as wrong:
        Store.open(store.directory, passphrase="another passphrase, 16+")
    assert "wrong store key" in str(wrong.value)
    assert digest(store.directory) == before


def test_decrypt_round_trip(tmp_path: Path) -> None:
    store, secrets = populated(tmp_path)
    encrypt_store(store, PASSPHRASE)
    assert decrypt_store(Store.open(store.directory, passphrase=PASSPHRASE)) == (2, 1)
    plain = Store.open(store.directory)
    assert not plain.encrypted and plain.key_record() is None
    assert plain.get_account("bob").refresh_token == secrets[1]  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="not encrypted"):
        decrypt_store(plain)


def cli(store: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner(env=env).invoke(main, ["--store", str(store), *args], catch_exceptions=False)
    assert PASSPHRASE not in result.output and "REFRESH_SECRET" not in result.output
    return result


def test_cli_encrypt_then_every_command_needs_the_key(tmp_path: Path) -> None:
    store, secrets = populated(tmp_path)
    key = tmp_path / "keys" / "store.key"
    result = cli(store.directory, "store", "encrypt", "--generate-key-file", str(key))
    assert result.exit_code == 0, result.output
    assert "encrypted 2 account(s) and 1 stored response(s)" in result.stdout
    assert f"CODEXGW_STORE_KEY_FILE={key}" in result.stdout
    assert os.stat(key).st_mode & 0o777 == 0o600 and len(key.read_text().strip()) >= 16
    assert_nowhere(store.directory, *secrets)

    before = digest(store.directory)
    locked = cli(store.directory, "accounts", "list")
    assert (
        locked.exit_code == 1
        and locked.stderr.startswith("error: store ")
        and "is encrypted" in locked.stderr
    )
    assert len(locked.stderr.splitlines()) == 1
    wrong_key = tmp_path / "wrong.key"
    wrong_key.write_text("x" * 20)
    wrong_key.chmod(0o600)
    wrong = cli(store.directory, "accounts", "list", env={"CODEXGW_STORE_KEY_FILE": str(wrong_key)})
    assert wrong.exit_code == 1 and "wrong store key" in wrong.stderr
    wrong_key.chmod(0o644)
    loose = cli(store.directory, "accounts", "list", env={"CODEXGW_STORE_KEY_FILE": str(wrong_key)})
    assert loose.exit_code == 1 and "readable by others" in loose.stderr
    assert digest(store.directory) == before

    listed = cli(store.directory, "accounts", "list", "--json", env={"CODEXGW_STORE_KEY_FILE": str(key)})
    assert [a["name"] for a in json.loads(listed.stdout)] == ["alice", "bob"]
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "codexgw-store-key").write_text(key.read_text())
    via_systemd = cli(
        store.directory, "accounts", "list", "--json", env={"CREDENTIALS_DIRECTORY": str(credentials)}
    )
    assert via_systemd.exit_code == 0, via_systemd.output
    status = cli(store.directory, "store", "status", env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert "encrypted: yes" in status.stdout and "systemd credential codexgw-store-key" in status.stdout
    decrypted = cli(store.directory, "store", "decrypt", "--key-file", str(key))
    assert decrypted.exit_code == 0, decrypted.output
    assert "no" in cli(store.directory, "store", "status").stdout.split("encrypted:")[1].splitlines()[0]


def test_cli_encrypt_refuses_a_short_or_missing_passphrase(tmp_path: Path) -> None:
    store, _ = populated(tmp_path)
    none = cli(store.directory, "store", "encrypt")
    assert none.exit_code == 1 and "no passphrase" in none.stderr
    short = cli(store.directory, "store", "encrypt", env={"CODEXGW_STORE_KEY": "too short"})
    assert short.exit_code == 1 and "at least 16 characters" in short.stderr
    assert not Store.open(store.directory).encrypted and Store.open(store.directory).key_record() is None


def test_serve_refuses_an_encrypted_store_without_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codexgw.cli import serve as serve_module

    store, _ = populated(tmp_path)
    encrypt_store(store, PASSPHRASE)
    started: list[object] = []
    monkeypatch.setattr(serve_module, "run", started.append)
    result = cli(store.directory, "serve")
    assert result.exit_code == 1 and "is encrypted; set CODEXGW_STORE_KEY" in result.stderr and not started
    ok = cli(store.directory, "serve", env={"CODEXGW_STORE_KEY": PASSPHRASE})
    assert ok.exit_code == 0 and started[0].store_passphrase == PASSPHRASE  # type: ignore[attr-defined]


async def test_a_running_server_uses_the_encrypted_store(env: Env) -> None:
    """Encrypted before start: requests are served, a refresh is persisted encrypted, the kept
    conversation is encrypted, and the CLI reads the same store with the key while it runs."""
    alice = env.add_account("alice")
    encrypt_store(Store.open(env.store_dir), PASSPHRASE)
    env.fake.script(None, Text("hello back"), Text("second"))
    await env.start(store_passphrase=PASSPHRASE)
    client = env.openai()
    first = await in_thread(client.responses.create, model="gpt-5.5", input=CONVERSATION)
    assert first.output_text == "hello back"
    old_refresh = alice.refresh_token
    env.fake.expire_access_token(alice)  # the next request refreshes (a 401 first)
    await in_thread(client.responses.create, model="gpt-5.5", input="again", previous_response_id=first.id)
    assert alice.refresh_count == 1 and alice.refresh_token != old_refresh
    stored = env.gateway.store.get_account("alice")
    assert stored.refresh_token == alice.refresh_token
    result = await trio.to_thread.run_sync(
        lambda: cli(env.store_dir, "accounts", "list", "--json", env={"CODEXGW_STORE_KEY": PASSPHRASE})
    )
    assert json.loads(result.stdout)[0]["name"] == "alice"
    blob = store_bytes(env.store_dir)
    for secret in (alice.refresh_token, alice.access_token, old_refresh, CONVERSATION):
        assert secret.encode() not in blob


def test_without_cryptography_the_error_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    store, _ = populated(tmp_path)
    encrypt_store(store, PASSPHRASE)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)  # import fails
    with pytest.raises(StoreError) as info:
        Store.open(store.directory, passphrase=PASSPHRASE)
    assert "pip install cryptography" in str(info.value) and "python3-cryptography" in str(info.value)
    from codexgw.store.crypto import crypto_available

    assert not crypto_available()
    assert Store.open(tmp_path / "plain").list_accounts() == []  # an unencrypted store never needs it
