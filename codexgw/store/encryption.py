"""Turning encryption at rest on and off: ``codexgw store encrypt`` / ``store decrypt``.

:func:`encrypt_store` writes the key record (:mod:`codexgw.store.crypto`) and every secret value
encrypted in one ``BEGIN IMMEDIATE`` transaction of ``codexgw.db`` (all or nothing), re-seals
``responses.db`` in one transaction of its own, then :func:`scrub`\\ s both files so no token is left
in clear anywhere in the store directory:

* ``secure_delete`` zeroes the replaced values inside the pages rewritten;
* ``wal_checkpoint(TRUNCATE)`` copies the WAL into the database and empties the ``-wal`` file
  (which held the old pages);
* ``VACUUM`` (with ``temp_store = MEMORY``, so no temporary file outside holds a copy) rebuilds
  the database without its free pages, which may hold values of deleted rows; a last checkpoint
  empties the WAL again.

The checkpoint needs no other process to be reading the store: with a server running it reports
busy, and :func:`scrub` fails with a line saying to stop it (the values are encrypted by then;
running ``store encrypt`` again finishes the scrub). :func:`decrypt_store` is the reverse.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from codexgw.store.crypto import ACCOUNT_SECRET_COLUMNS, SCRYPT_N, Opener, new_key_record
from codexgw.store.models import StoreError
from codexgw.store.responses import RESPONSES_DB_FILENAME, ResponseStore
from codexgw.store.sqlite import Store

__all__ = ["decrypt_store", "encrypt_store", "scrub"]


def _reseal_accounts(conn: sqlite3.Connection, old: Opener, new: Opener) -> int:
    rows = conn.execute(f"SELECT id, {', '.join(ACCOUNT_SECRET_COLUMNS)} FROM accounts").fetchall()
    for row in rows:
        values = {c: new.seal(old(row[c], f"accounts.{c}"), f"accounts.{c}") for c in ACCOUNT_SECRET_COLUMNS}
        sets = ", ".join(f"{c} = :{c}" for c in values)
        # updated_at is left alone: nothing about the login changed, and the server needs no reload.
        conn.execute(f"UPDATE accounts SET {sets} WHERE id = :id", {**values, "id": row["id"]})
    return len(rows)


def _responses(store: Store) -> ResponseStore | None:
    if not (store.directory / RESPONSES_DB_FILENAME).exists():
        return None
    return ResponseStore.open(store.directory, opener=store.opener)


def scrub(path: Path) -> None:
    """Empty the WAL of the SQLite file ``path`` and vacuum away its free pages (see the module).

    Raises:
        StoreError: another process holds the file open (a running server), or SQLite fails.
    """
    if not path.exists():
        return
    try:
        with closing(sqlite3.connect(path, isolation_level=None, timeout=10.0)) as conn:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA temp_store = MEMORY")
            for step in ("checkpoint", "VACUUM", "checkpoint"):
                if step == "VACUUM":
                    conn.execute("VACUUM")
                    continue
                busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if busy:
                    raise StoreError(
                        f"{path.name} is open in another process (a running codexgw serve?); stop it and "
                        "run the command again to finish removing old values from the file"
                    )
    except sqlite3.Error as e:
        raise StoreError(f"{path}: {e}") from None
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise StoreError(
            f"{wal.name} could not be emptied; stop every codexgw process and run the command again"
        )


def encrypt_store(store: Store, passphrase: str, *, scrypt_n: int = SCRYPT_N) -> tuple[int, int]:
    """Encrypt the store's secrets under ``passphrase`` (see the module docstring).

    Already encrypted (``store`` opened with its key): re-seals ``responses.db`` (rows a cut-short run
    left in clear) and scrubs again.

    Returns:
        ``(accounts, responses)`` rewritten.

    Raises:
        StoreError: the passphrase is too short, ``cryptography`` is missing, the store is encrypted
            but not opened with its key, or :func:`scrub` fails.
    """
    if store.key_record() is not None:
        if not store.encrypted:
            raise StoreError(f"store {store.directory} is already encrypted under another key")
        responses = _responses(store)
        rows = responses.reseal(store.opener) if responses is not None else 0  # finishes a cut-short run
        for name in (store.path.name, RESPONSES_DB_FILENAME):
            scrub(store.directory / name)
        return 0, rows
    record, cipher = new_key_record(passphrase, n=scrypt_n)
    new = Opener(cipher)
    responses = _responses(store)
    with store._write() as conn:
        conn.execute(
            "INSERT INTO store_key (id, kdf, salt, n, r, p, check_value) VALUES (1, 'scrypt', ?, ?, ?, ?, ?)",
            (record.salt, record.n, record.r, record.p, record.check_value),
        )
        accounts = _reseal_accounts(conn, store.opener, new)
    store.opener = new
    rows = responses.reseal(new) if responses is not None else 0
    for name in (store.path.name, RESPONSES_DB_FILENAME):
        scrub(store.directory / name)
    return accounts, rows


def decrypt_store(store: Store) -> tuple[int, int]:
    """Store the secrets in clear again and drop the key record (``store`` opened with its key).

    Returns:
        ``(accounts, responses)`` rewritten.

    Raises:
        StoreError: the store is not encrypted, or :func:`scrub` fails.
    """
    if not store.encrypted:
        raise StoreError(f"store {store.directory} is not encrypted")
    responses = _responses(store)
    plain = Opener()
    with store._write() as conn:
        accounts = _reseal_accounts(conn, store.opener, plain)
        conn.execute("DELETE FROM store_key")
    store.opener = plain
    rows = responses.reseal(plain) if responses is not None else 0
    for name in (store.path.name, RESPONSES_DB_FILENAME):
        scrub(store.directory / name)
    return accounts, rows
