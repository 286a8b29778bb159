"""The account store: one SQLite file shared by the server and CLI processes (design.md §3).

Theory of operation:

* **Files.** ``<directory>/codexgw.db`` in WAL mode; the directory is 0700 and the database (and its
  ``-wal``/``-shm`` companions, which SQLite creates with the database's mode) 0600.
* **Connections.** Every operation opens its own connection and closes it, so a :class:`Store` may be
  used from any thread (the server calls it via ``trio.to_thread.run_sync``) and from several
  processes at once. ``busy_timeout`` makes a writer wait for another instead of failing.
* **Writes.** Each write runs in one ``BEGIN IMMEDIATE`` transaction: read, decide, write, commit; a
  crash or an exception leaves nothing half-written.
* **Change detection.** Triggers bump ``meta.generation`` on every insert/update/delete of
  ``accounts`` (and of the pool settings, users and API keys), whichever process made it;
  :meth:`Store.generation` is a cheap poll.
* **Refresh tokens are single-use** (codex-protocol.md §3). :meth:`Store.save_tokens` is a
  compare-and-swap on the stored refresh token, and :meth:`Store.try_acquire_refresh_lease` gives one
  owner at a time (across processes) the right to spend it.
* **Clock.** Methods take ``now`` (epoch seconds); ``None`` means ``time.time()``.
* **Tokens into columns.** What a login's tokens say about its row (identity, plan, expiry, from
  the JWT claims) is computed in :mod:`codexgw.store.upsert`, inside these transactions.
* **Encryption at rest.** When the store has a ``store_key`` row, the secret columns hold AES-GCM
  ``enc1:…`` values (:mod:`codexgw.store.crypto`); :meth:`Store.open` needs the passphrase then and
  refuses a wrong one before anything is read or written. :attr:`Store.opener` reads and writes
  those columns. ``secure_delete`` is on, so replaced values are zeroed in the file;
  :mod:`codexgw.store.encryption` turns encryption on and off.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import quote

from codexgw.store.crypto import KeyRecord, Opener, open_key
from codexgw.store.migrations import MIGRATIONS, SchemaTooNewError, migrate
from codexgw.store.models import Account, StoreError, TokenSet, check_name, row_to_account
from codexgw.store.renames import rename_account_refs
from codexgw.store.upsert import refreshed_columns, upsert_account_row

DB_FILENAME = "codexgw.db"
BUSY_TIMEOUT_S = 10.0
"""How long a writer waits for another process's write lock before failing."""

__all__ = ["DB_FILENAME", "Account", "Store", "StoreError", "TokenSet"]


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _tighten(path: Path, mode: int) -> None:
    """chmod ``path`` to ``mode`` if it exists and grants group/other anything."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, mode)


class Store:
    """Synchronous, thread- and process-safe access to ``<directory>/codexgw.db``.

    Construct with :meth:`open`, which creates and migrates the database; the plain constructor
    only records paths and never creates files.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).expanduser()
        self.path = self.directory / DB_FILENAME
        self.opener = Opener()
        """Reads and writes the secret columns (with the store's cipher once opened with its key)."""

    @property
    def encrypted(self) -> bool:
        """True when this store was opened with its key and its secrets are encrypted."""
        return self.opener.cipher is not None

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path | str, *, passphrase: str | None = None) -> Store:
        """Create (0700 dir, 0600 file) or open the store, switch on WAL and apply migrations.

        Args:
            directory: the store directory.
            passphrase: the store's passphrase, needed when it is encrypted (ignored otherwise).

        Raises:
            StoreError: the directory or file cannot be created/opened, the file is not a
                database, its schema is newer than this codexgw knows, or it is encrypted and
                ``passphrase`` is missing or wrong (nothing is written then).
        """
        store = cls(Path(directory))
        try:
            store.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _tighten(store.directory, 0o700)
            fd = os.open(store.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            store._tighten_files()
        except OSError as e:
            raise StoreError(f"cannot open store {store.directory}: {e.strerror or e}") from None
        try:
            with closing(store._connect()) as conn:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"store {store.path}: cannot enable WAL mode (got {mode})")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    migrate(conn, MIGRATIONS)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except SchemaTooNewError as e:
            raise StoreError(f"store {store.path}: {e}") from None
        except sqlite3.DatabaseError as e:
            raise StoreError(f"store {store.path}: {e}") from None
        store._tighten_files()
        record = store.key_record()
        if record is not None:
            if not passphrase:
                raise StoreError(
                    f"store {store.directory} is encrypted; set CODEXGW_STORE_KEY to its passphrase "
                    "(or CODEXGW_STORE_KEY_FILE to a file holding it)"
                )
            store.opener = Opener(open_key(record, passphrase, where=f"store {store.directory}"))
        return store

    def key_record(self) -> KeyRecord | None:
        """The ``store_key`` row (salt, scrypt cost, check value), or ``None`` when not encrypted."""
        with self._read() as conn:
            row = conn.execute("SELECT salt, n, r, p, check_value FROM store_key WHERE id = 1").fetchone()
        if row is None:
            return None
        return KeyRecord(
            salt=bytes(row["salt"]), n=row["n"], r=row["r"], p=row["p"], check_value=row["check_value"]
        )

    def _tighten_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            _tighten(self.path.with_name(self.path.name + suffix), 0o600)

    def _connect(self) -> sqlite3.Connection:
        # mode=rw: never create the file here (open() does it with the right mode).
        uri = f"file:{quote(str(self.path))}?mode=rw"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # replaced token values are zeroed, not left in free space
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any exception."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- reads ----------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """Return ``PRAGMA user_version`` (the number of migrations applied)."""
        with self._read() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def generation(self) -> int:
        """Return a counter that grows on every change to ``accounts``, ``pool_settings``, ``users`` and
        ``api_keys`` (but ``last_used_at``) by any process.

        Cheap enough to poll every second; reload accounts when it differs from the last value.
        """
        with self._read() as conn:
            return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def list_accounts(self) -> list[Account]:
        """Return all accounts (enabled or not), ordered by ``id``."""
        with self._read() as conn:
            return [
                row_to_account(r, self.opener) for r in conn.execute("SELECT * FROM accounts ORDER BY id")
            ]

    def get_account(self, name: str) -> Account | None:
        """Return the account called ``name``, or ``None``."""
        with self._read() as conn:
            row = conn.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
        return row_to_account(row, self.opener) if row else None

    def get_account_by_id(self, id: int) -> Account | None:
        """Return the account with row id ``id``, or ``None``."""
        with self._read() as conn:
            row = conn.execute("SELECT * FROM accounts WHERE id = ?", (id,)).fetchone()
        return row_to_account(row, self.opener) if row else None

    # -- account writes -------------------------------------------------------------------------

    def upsert_account(
        self, tokens: TokenSet, *, name: str | None = None, now: float | None = None
    ) -> tuple[Account, bool]:
        """Add a login, or update the stored account with the same identity.

        Identity comes from the id_token claims (codex-protocol.md §4); ``chatgpt_account_id`` falls
        back to ``tokens.account_id``. An existing row matches when its ``chatgpt_account_id`` is equal
        and its ``user_id`` is equal or either side has none (two members of one ChatGPT Team
        workspace share the account id but not the user id). A match gets the new tokens and
        identity, status ``active``, and ``name`` if given and free; ``enabled`` is kept.

        Args:
            tokens: the login's tokens.
            name: account name; default is the email's local part (or ``"account"``), suffixed
                ``-2``, ``-3`` … when taken. An explicit name must be free.
            now: epoch seconds for ``created_at``/``updated_at``.

        Returns:
            ``(account, created)``.

        Raises:
            StoreError: id_token not a JWT, no account id anywhere, bad or taken name.
        """
        with self._write() as conn:
            return upsert_account_row(conn, tokens, name, _now(now), self.opener)

    def upsert_accounts(
        self, items: Iterable[tuple[str | None, TokenSet]], *, now: float | None = None
    ) -> list[tuple[Account, bool]]:
        """Like :meth:`upsert_account` for several ``(name, tokens)`` pairs, all or nothing."""
        with self._write() as conn:
            return [upsert_account_row(conn, tokens, name, _now(now), self.opener) for name, tokens in items]

    def remove_account(self, name: str) -> bool:
        """Delete the account called ``name`` (and its lease). Returns False if there was none."""
        with self._write() as conn:
            return conn.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount > 0

    def set_enabled(self, name: str, enabled: bool, *, now: float | None = None) -> bool:
        """Switch the account on or off. Returns False if there is no such account."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE accounts SET enabled = ?, updated_at = ? WHERE name = ?",
                (int(enabled), _now(now), name),
            )
            return cur.rowcount > 0

    def rename_account(self, old: str, new: str, *, now: float | None = None) -> bool:
        """Rename ``old`` to ``new``. Returns False if ``old`` does not exist.

        Raises:
            StoreError: ``new`` is invalid or used by another account.
        """
        check_name(new)
        with self._write() as conn:
            row = conn.execute("SELECT id FROM accounts WHERE name = ?", (old,)).fetchone()
            if row is None:
                return False
            other = conn.execute("SELECT id FROM accounts WHERE name = ?", (new,)).fetchone()
            if other is not None and other["id"] != row["id"]:
                raise StoreError(f"name '{new}' is already used by another account")
            conn.execute(
                "UPDATE accounts SET name = ?, updated_at = ? WHERE id = ?", (new, _now(now), row["id"])
            )
            rename_account_refs(conn, old, new)  # keys narrowed to it, its usage history (issue 12)
            return True

    def set_linked_path(self, account_id: int, path: str | None, *, now: float | None = None) -> bool:
        """Tie the account to a Codex ``auth.json`` (absolute path), or untie it with ``None``.

        Returns False if there is no such account.
        """
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE accounts SET linked_path = ?, updated_at = ? WHERE id = ?",
                (path, _now(now), account_id),
            )
            return cur.rowcount > 0

    def save_tokens(
        self,
        account_id: int,
        *,
        access_token: str | None,
        refresh_token: str | None,
        id_token: str | None,
        expected_refresh_token: str,
        now: float,
    ) -> bool:
        """Persist a refresh result, unless another process rotated the tokens meanwhile.

        Compare-and-swap: writes only if the stored refresh token still equals
        ``expected_refresh_token`` (the one that was spent). Only non-``None`` tokens are replaced
        (codex-protocol.md §3); ``access_expires_at`` and plan/identity are recomputed from the new
        tokens (``chatgpt_account_id`` is not, per §3); ``last_refresh = now``; status ``active``.
        A new id_token that does not parse is still stored (losing a rotated token is worse).

        Returns:
            True if written; False if the account is gone or its refresh token differs.
        """
        with self._write() as conn:
            row = conn.execute("SELECT * FROM accounts WHERE id = ?", (account_id,)).fetchone()
            if (
                row is None
                or self.opener(row["refresh_token"], "accounts.refresh_token") != expected_refresh_token
            ):
                return False
            values = refreshed_columns(
                access_token=access_token,
                refresh_token=refresh_token,
                id_token=id_token,
                now=now,
                opener=self.opener,
            )
            sets = ", ".join(f"{k} = :{k}" for k in values)
            conn.execute(f"UPDATE accounts SET {sets} WHERE id = :id", {**values, "id": account_id})
            return True

    def set_status(
        self, account_id: int, status: str, reason: str | None, *, now: float | None = None
    ) -> None:
        """Set ``status`` (``"active"``, ``"needs_login"`` …) and its reason; no-op if unchanged."""
        with self._write() as conn:
            conn.execute(
                "UPDATE accounts SET status = ?, status_reason = ?, updated_at = ? "
                "WHERE id = ? AND (status IS NOT ? OR status_reason IS NOT ?)",
                (status, reason, _now(now), account_id, status, reason),
            )

    # -- refresh lease --------------------------------------------------------------------------

    def try_acquire_refresh_lease(
        self,
        account_id: int,
        owner: str,
        *,
        now: float,
        ttl_s: float,
        holder_gone: Callable[[str], bool] | None = None,
    ) -> bool:
        """Atomically take (or extend) the right to refresh ``account_id`` until ``now + ttl_s``.

        Succeeds if there is no lease, the lease expired (``expires_at <= now``), ``owner``
        already holds it, or ``holder_gone(current owner)`` says its holder no longer runs (a
        crash: :func:`codexgw.auth.holder.holder_gone`). Fails if another owner holds an unexpired
        lease or the account is gone. ``owner`` should be unique per process and task
        (:func:`codexgw.auth.holder.new_owner`).
        """
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
                return False
            row = conn.execute(
                "SELECT owner, expires_at FROM refresh_leases WHERE account_id = ?", (account_id,)
            ).fetchone()
            held = row is not None and row["owner"] != owner and row["expires_at"] > now
            if held and (holder_gone is None or not holder_gone(row["owner"])):
                return False
            conn.execute(
                "INSERT INTO refresh_leases (account_id, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at",
                (account_id, owner, now + ttl_s),
            )
            return True

    def release_refresh_lease(self, account_id: int, owner: str) -> None:
        """Drop the lease if ``owner`` holds it (no-op otherwise)."""
        with self._write() as conn:
            conn.execute("DELETE FROM refresh_leases WHERE account_id = ? AND owner = ?", (account_id, owner))
