"""Versioned, additive schema migrations for the SQLite store (design.md §3).

``PRAGMA user_version`` holds the number of steps applied. :data:`MIGRATIONS` is append-only: step
``i`` (0-based) upgrades a database from version ``i`` to ``i + 1``. Never edit or reorder a released
step; add a new one (``CREATE TABLE``, ``ALTER TABLE … ADD COLUMN``, new triggers). A database whose
``user_version`` is above ``len(MIGRATIONS)`` was written by a newer codexgw and is refused.

Schema after step 1::

    meta(key TEXT PK, value INTEGER)          -- 'generation': bumped by triggers on every accounts change
    accounts(id INTEGER PK AUTOINCREMENT, name UNIQUE, chatgpt_account_id, user_id, email, plan_type,
             fedramp 0/1, id_token, access_token, refresh_token, api_key,
             access_expires_at REAL epoch s, last_refresh REAL epoch s, enabled 0/1,
             status 'active'|'needs_login'|…, status_reason, weight REAL, linked_path,
             created_at REAL epoch s, updated_at REAL epoch s)
    refresh_leases(account_id PK -> accounts ON DELETE CASCADE, owner TEXT, expires_at REAL epoch s)

Step 2 adds the pool's persisted choices (``codexgw/store/pool_settings.py``)::

    pool_settings(key TEXT PK, value TEXT)    -- 'strategy' (a strategy name), 'pinned_account_id'
                                              -- (an accounts.id as text); triggers bump 'generation'

Step 3 adds encryption at rest (``codexgw/store/crypto.py``)::

    store_key(id INTEGER PK CHECK (id = 1), kdf TEXT 'scrypt', salt BLOB, n, r, p INTEGER,
              check_value TEXT)          -- no row: not encrypted; one row: secret columns are enc1:…

Step 4 adds teams (issue 12; ``store/users.py``, ``store/keys.py``, ``store/usage.py``)::

    users(name TEXT PK, role 'admin'|'member', password 'scrypt$n$r$p$salt$hash',
          created_at REAL, updated_at REAL)
    accounts.owner TEXT                       -- a users.name or NULL (set NULL when the user goes)
    api_keys(id INTEGER PK AUTOINCREMENT, name UNIQUE, prefix, digest UNIQUE (SHA-256 hex),
             owner, admin 0/1, accounts JSON list | NULL, models JSON list | NULL, rpm, tpm,
             tokens_per_day, max_streams, expires_at, reasoning_mode, max_effort,
             created_at, revoked_at, last_used_at, old_prefix, old_digest, grace_until)
    usage(hour INTEGER epoch s, key, account, model, requests, errors, input_tokens,
          cached_tokens, output_tokens, reasoning_tokens; PK (hour, key, account, model))
    audit(id INTEGER PK AUTOINCREMENT, at REAL, actor, action, target, detail JSON)
    sessions(digest TEXT PK (SHA-256 hex of the cookie), user -> users ON DELETE CASCADE,
             created_at, expires_at, address)

Triggers bump ``generation`` on every change of ``users`` and of ``api_keys`` (but not of
``api_keys.last_used_at``, which the usage flush writes every few seconds); ``usage``, ``audit``
and ``sessions`` are not watched.

Step 5 adds the pool's runtime state shared by ``serve --workers`` and kept across restarts
(``store/pool_state.py``; issue 16 item 8, issue 17)::

    pool_state(account_id PK -> accounts ON DELETE CASCADE, cooldown_until REAL epoch s | NULL
               (NULL with a since: cleared then), cooldown_reason, cooldown_quota 0/1,
               cooldown_since REAL epoch s (when its cause was seen) | NULL (nothing known),
               quota JSON (QuotaSnapshot.to_dict) | NULL, quota_at REAL (its observed_at), seq)
    pool_sessions(session TEXT PK, account_id -> accounts ON DELETE CASCADE, bound_at REAL, seq)
    meta 'pool_seq'                           -- bumped by every batch written; rows carry it

Neither table bumps ``generation`` (the accounts are not reloaded for them); readers poll
``pool_seq``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

Migration = Sequence[str]
"""One step: SQL statements run in order inside the caller's transaction."""

_V1: Migration = (
    """CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    )""",
    "INSERT INTO meta (key, value) VALUES ('generation', 0)",
    """CREATE TABLE accounts (
        id                 INTEGER PRIMARY KEY AUTOINCREMENT,
        name               TEXT NOT NULL UNIQUE,
        chatgpt_account_id TEXT NOT NULL,
        user_id            TEXT,
        email              TEXT,
        plan_type          TEXT,
        fedramp            INTEGER NOT NULL DEFAULT 0,
        id_token           TEXT NOT NULL,
        access_token       TEXT NOT NULL,
        refresh_token      TEXT NOT NULL,
        api_key            TEXT,
        access_expires_at  REAL,
        last_refresh       REAL,
        enabled            INTEGER NOT NULL DEFAULT 1,
        status             TEXT NOT NULL DEFAULT 'active',
        status_reason      TEXT,
        weight             REAL NOT NULL DEFAULT 1.0,
        linked_path        TEXT,
        created_at         REAL NOT NULL,
        updated_at         REAL NOT NULL
    )""",
    "CREATE INDEX accounts_chatgpt_account_id ON accounts (chatgpt_account_id)",
    """CREATE TABLE refresh_leases (
        account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
        owner      TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    """CREATE TRIGGER accounts_generation_insert AFTER INSERT ON accounts BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END""",
    """CREATE TRIGGER accounts_generation_update AFTER UPDATE ON accounts BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END""",
    """CREATE TRIGGER accounts_generation_delete AFTER DELETE ON accounts BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END""",
)

_V2: Migration = (
    """CREATE TABLE pool_settings (
        key   TEXT PRIMARY KEY,
        value TEXT
    )""",
    """CREATE TRIGGER pool_settings_generation_insert AFTER INSERT ON pool_settings BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END""",
    """CREATE TRIGGER pool_settings_generation_update AFTER UPDATE ON pool_settings BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END""",
    """CREATE TRIGGER pool_settings_generation_delete AFTER DELETE ON pool_settings BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END""",
)

_V3: Migration = (
    """CREATE TABLE store_key (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        kdf         TEXT NOT NULL,
        salt        BLOB NOT NULL,
        n           INTEGER NOT NULL,
        r           INTEGER NOT NULL,
        p           INTEGER NOT NULL,
        check_value TEXT NOT NULL
    )""",
)


def _bump_on(table: str, event: str, columns: str = "") -> str:
    of = f" OF {columns}" if columns else ""
    return f"""CREATE TRIGGER {table}_generation_{event.lower()} AFTER {event}{of} ON {table} BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END"""


_KEY_POLICY_COLUMNS = (
    "name, prefix, digest, owner, admin, accounts, models, rpm, tpm, tokens_per_day, max_streams, "
    "expires_at, reasoning_mode, max_effort, revoked_at, old_prefix, old_digest, grace_until"
)

_V4: Migration = (
    """CREATE TABLE users (
        name       TEXT PRIMARY KEY,
        role       TEXT NOT NULL DEFAULT 'member',
        password   TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "ALTER TABLE accounts ADD COLUMN owner TEXT",
    """CREATE TABLE api_keys (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        name           TEXT NOT NULL UNIQUE,
        prefix         TEXT NOT NULL,
        digest         TEXT NOT NULL UNIQUE,
        owner          TEXT,
        admin          INTEGER NOT NULL DEFAULT 0,
        accounts       TEXT,
        models         TEXT,
        rpm            INTEGER,
        tpm            INTEGER,
        tokens_per_day INTEGER,
        max_streams    INTEGER,
        expires_at     REAL,
        reasoning_mode TEXT,
        max_effort     TEXT,
        created_at     REAL NOT NULL,
        revoked_at     REAL,
        last_used_at   REAL,
        old_prefix     TEXT,
        old_digest     TEXT,
        grace_until    REAL
    )""",
    "CREATE INDEX api_keys_prefix ON api_keys (prefix)",
    """CREATE TABLE usage (
        hour             INTEGER NOT NULL,
        key              TEXT NOT NULL,
        account          TEXT NOT NULL,
        model            TEXT NOT NULL,
        requests         INTEGER NOT NULL DEFAULT 0,
        errors           INTEGER NOT NULL DEFAULT 0,
        input_tokens     INTEGER NOT NULL DEFAULT 0,
        cached_tokens    INTEGER NOT NULL DEFAULT 0,
        output_tokens    INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (hour, key, account, model)
    ) WITHOUT ROWID""",
    "CREATE INDEX usage_key_hour ON usage (key, hour)",
    """CREATE TABLE audit (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at     REAL NOT NULL,
        actor  TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT
    )""",
    "CREATE INDEX audit_at ON audit (at)",
    """CREATE TABLE sessions (
        digest     TEXT PRIMARY KEY,
        user       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        address    TEXT
    )""",
    _bump_on("users", "INSERT"),
    _bump_on("users", "UPDATE"),
    _bump_on("users", "DELETE"),
    _bump_on("api_keys", "INSERT"),
    _bump_on("api_keys", "UPDATE", _KEY_POLICY_COLUMNS),
    _bump_on("api_keys", "DELETE"),
)

_V5: Migration = (
    """CREATE TABLE pool_state (
        account_id      INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
        cooldown_until  REAL,
        cooldown_reason TEXT,
        cooldown_quota  INTEGER,
        cooldown_since  REAL,
        quota           TEXT,
        quota_at        REAL,
        seq             INTEGER NOT NULL
    )""",
    "CREATE INDEX pool_state_seq ON pool_state (seq)",
    """CREATE TABLE pool_sessions (
        session    TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        bound_at   REAL NOT NULL,
        seq        INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX pool_sessions_seq ON pool_sessions (seq)",
    "INSERT INTO meta (key, value) VALUES ('pool_seq', 0)",
)

MIGRATIONS: list[Migration] = [_V1, _V2, _V3, _V4, _V5]
"""All steps, oldest first; ``len(MIGRATIONS)`` is the schema version this codexgw writes."""


class SchemaTooNewError(Exception):
    """The database's ``user_version`` is above what this codexgw knows."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the store has schema version {found} but this codexgw only knows up to {known}; "
            "upgrade codexgw (or use another --store)"
        )
        self.found = found
        self.known = known


def schema_version(conn: sqlite3.Connection) -> int:
    """Return the database's ``PRAGMA user_version`` (0 for a fresh file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> tuple[int, int]:
    """Bring the database up to ``len(migrations)``, inside the caller's open write transaction.

    Args:
        conn: a connection that has already run ``BEGIN IMMEDIATE`` (so concurrent openers serialise).
        migrations: the steps; tests pass their own list.

    Returns:
        ``(old_version, new_version)``.

    Raises:
        SchemaTooNewError: the database is newer than ``migrations``.
    """
    old = schema_version(conn)
    known = len(migrations)
    if old > known:
        raise SchemaTooNewError(old, known)
    for step in migrations[old:]:
        for statement in step:
            conn.execute(statement)
    if known != old:
        # PRAGMA takes no parameters; ``known`` is an int we computed.
        conn.execute(f"PRAGMA user_version = {int(known)}")
    return old, known
