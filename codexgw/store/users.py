"""Users and their web sessions (teams contract §1, §4; tables ``users`` and ``sessions``).

A user has a name, a role (``admin`` or ``member``) and a password stored as
:func:`codexgw.policy.passwords.hash_password` makes it (never in clear). A session is the SHA-256
digest of the ``codexgw_session`` cookie's random value (the value itself is never stored), its
user and its expiry. Removing a user, in one transaction: their sessions end, their keys are
revoked (kept for usage history), and their accounts become unowned (the shared pool). The last
admin cannot be removed or demoted.

Functions take a :class:`~codexgw.store.sqlite.Store`, are synchronous (the server calls them
through ``trio.to_thread``) and write the change's :class:`~codexgw.store.audit.Audit` entry in
the same transaction.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from codexgw.policy.passwords import check_password, hash_password
from codexgw.store.audit import Audit, write_audit
from codexgw.store.models import NameTakenError, StoreError, UnknownNameError
from codexgw.store.sqlite import Store

__all__ = [
    "RemovedUser",
    "User",
    "add_user",
    "count_users",
    "create_session",
    "delete_session",
    "get_user",
    "list_users",
    "new_password_hash",
    "remove_user",
    "session_user",
    "set_account_owner",
    "set_password",
    "set_role",
]


@dataclass(frozen=True)
class User:
    """A stored user; ``password`` is the scrypt string (hidden from ``repr``)."""

    name: str
    role: str
    created_at: float
    password: str = field(default="", repr=False)

    def public(self) -> dict[str, Any]:
        """The contract's ``user`` shape: ``{"name", "role", "created_at"}``."""
        return {"name": self.name, "role": self.role, "created_at": self.created_at}


@dataclass(frozen=True)
class RemovedUser:
    """What removing a user changed: the keys revoked and the accounts left unowned (names)."""

    keys_revoked: list[str]
    accounts_unowned: list[str]


def new_password_hash(password: str) -> str:
    """The stored form of ``password`` with a fresh 16-byte salt (~50 ms of CPU).

    Raises:
        StoreError: the password is too short or too long (one line, never the password).
    """
    try:
        check_password(password)
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    return hash_password(password, salt=secrets.token_bytes(16))


def _user(row: sqlite3.Row) -> User:
    return User(name=row["name"], role=row["role"], created_at=row["created_at"], password=row["password"])


def list_users(store: Store) -> list[User]:
    """Every user, by name."""
    with store._read() as conn:
        return [_user(r) for r in conn.execute("SELECT * FROM users ORDER BY name")]


def get_user(store: Store, name: str) -> User | None:
    """The user called ``name``, or ``None``."""
    with store._read() as conn:
        row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
    return _user(row) if row else None


def count_users(store: Store) -> int:
    """How many users exist."""
    with store._read() as conn:
        return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def add_user(
    store: Store,
    name: str,
    role: str,
    password_hash: str,
    *,
    now: float,
    audit: Audit | None = None,
    only_if_none: bool = False,
) -> User:
    """Create a user.

    Args:
        only_if_none: refuse unless no user exists yet (the one-time setup of the first admin).

    Raises:
        NameTakenError: a user called ``name`` exists.
        StoreError: ``only_if_none`` and some user exists.
    """
    with store._write() as conn:
        if only_if_none and conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None:
            raise StoreError("the first user exists already; sign in instead")
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is not None:
            raise NameTakenError(f"a user named '{name}' exists already")
        conn.execute(
            "INSERT INTO users (name, role, password, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (name, role, password_hash, now, now),
        )
        write_audit(conn, audit, now=now)
    return User(name=name, role=role, created_at=now, password=password_hash)


def _admins_left(conn: sqlite3.Connection, without: str) -> int:
    return int(
        conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin' AND name != ?", (without,)).fetchone()[
            0
        ]
    )


def set_role(store: Store, name: str, role: str, *, now: float, audit: Audit | None = None) -> User | None:
    """Change ``name``'s role. Returns the user, or ``None`` if there is none.

    Raises:
        StoreError: it would leave no admin.
    """
    with store._write() as conn:
        row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        if row["role"] == "admin" and role != "admin" and _admins_left(conn, name) == 0:
            raise StoreError(f"'{name}' is the last admin; make another user admin first")
        conn.execute("UPDATE users SET role = ?, updated_at = ? WHERE name = ?", (role, now, name))
        write_audit(conn, audit, now=now)
        row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
    return _user(row)


def set_password(
    store: Store,
    name: str,
    password_hash: str,
    *,
    now: float,
    audit: Audit | None = None,
    keep_session: str | None = None,
) -> bool:
    """Replace ``name``'s password; every session of the user ends except ``keep_session`` (a digest).
    Returns False if there is no such user."""
    with store._write() as conn:
        cur = conn.execute(
            "UPDATE users SET password = ?, updated_at = ? WHERE name = ?", (password_hash, now, name)
        )
        if cur.rowcount == 0:
            return False
        conn.execute("DELETE FROM sessions WHERE user = ? AND digest IS NOT ?", (name, keep_session))
        write_audit(conn, audit, now=now)
    return True


def remove_user(store: Store, name: str, *, now: float, audit: Audit | None = None) -> RemovedUser | None:
    """Remove ``name`` (see the module docstring). Returns what changed, or ``None`` if no such user.

    Raises:
        StoreError: ``name`` is the last admin.
    """
    with store._write() as conn:
        row = conn.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        if row["role"] == "admin" and _admins_left(conn, name) == 0:
            raise StoreError(f"'{name}' is the last admin; make another user admin first")
        keys = [
            r["name"]
            for r in conn.execute(
                "SELECT name FROM api_keys WHERE owner = ? AND revoked_at IS NULL ORDER BY name", (name,)
            )
        ]
        conn.execute("UPDATE api_keys SET revoked_at = ? WHERE owner = ? AND revoked_at IS NULL", (now, name))
        accounts = [
            r["name"]
            for r in conn.execute("SELECT name FROM accounts WHERE owner = ? ORDER BY name", (name,))
        ]
        conn.execute("UPDATE accounts SET owner = NULL, updated_at = ? WHERE owner = ?", (now, name))
        conn.execute("DELETE FROM users WHERE name = ?", (name,))
        write_audit(conn, audit, now=now)
    return RemovedUser(keys_revoked=keys, accounts_unowned=accounts)


# -- sessions ---------------------------------------------------------------------------------------


def create_session(
    store: Store, digest: str, user: str, *, now: float, expires_at: float, address: str | None
) -> None:
    """Store a session (``digest``: SHA-256 hex of the cookie value); expired ones are purged."""
    with store._write() as conn:
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        conn.execute(
            "INSERT INTO sessions (digest, user, created_at, expires_at, address) VALUES (?, ?, ?, ?, ?)",
            (digest, user, now, expires_at, address),
        )


def session_user(store: Store, digest: str, *, now: float) -> tuple[User, float] | None:
    """``(user, expires_at)`` of an unexpired session, or ``None``."""
    with store._read() as conn:
        row = conn.execute(
            "SELECT users.*, sessions.expires_at AS session_expires FROM sessions "
            "JOIN users ON users.name = sessions.user WHERE sessions.digest = ? AND sessions.expires_at > ?",
            (digest, now),
        ).fetchone()
    return (_user(row), float(row["session_expires"])) if row else None


def delete_session(store: Store, digest: str) -> None:
    """End a session (no-op if unknown)."""
    with store._write() as conn:
        conn.execute("DELETE FROM sessions WHERE digest = ?", (digest,))


def set_account_owner(
    store: Store, account: str, owner: str | None, *, now: float, audit: Audit | None = None
) -> bool:
    """Make ``owner`` (a user name, or ``None`` for the shared pool) own ``account``.

    Returns False if there is no such account.

    Raises:
        UnknownNameError: no user called ``owner`` (param ``owner``).
    """
    with store._write() as conn:
        if (
            owner is not None
            and conn.execute("SELECT 1 FROM users WHERE name = ?", (owner,)).fetchone() is None
        ):
            raise UnknownNameError(f"no user named '{owner}'", param="owner")
        cur = conn.execute(
            "UPDATE accounts SET owner = ?, updated_at = ? WHERE name = ?", (owner, now, account)
        )
        if cur.rowcount == 0:
            return False
        write_audit(conn, audit, now=now)
    return True
