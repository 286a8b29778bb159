"""API keys in the store (teams contract §1; table ``api_keys`` of migration step 4).

Only the SHA-256 digest of a secret and its visible prefix are stored (the secret is shown once,
by whoever created it). A key's owner must be a user, its ``accounts`` existing account names; a
revoked key stays (its usage history keeps its name). A rotation moves the current digest to
``old_digest`` valid until ``grace_until`` and stores the new one. Every change bumps the store's
generation (triggers), so a running server follows within a second.

Functions take a :class:`~codexgw.store.sqlite.Store`, are synchronous and write the change's
:class:`~codexgw.store.audit.Audit` entry in the same transaction.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Mapping
from typing import Any

from codexgw.policy.keys import ApiKey, key_digest, key_prefix, secret_from
from codexgw.store.audit import Audit, write_audit
from codexgw.store.models import NameTakenError, UnknownNameError
from codexgw.store.renames import rename_key_usage
from codexgw.store.sqlite import Store

__all__ = [
    "count_keys",
    "create_key",
    "get_key",
    "list_keys",
    "new_secret",
    "revoke_key",
    "rotate_key",
    "update_key",
]

_COLUMNS = (
    "name", "owner", "admin", "accounts", "models", "rpm", "tpm", "tokens_per_day", "max_streams",
    "expires_at", "reasoning_mode", "max_effort",
)  # fmt: skip
"""The columns :func:`create_key` and :func:`update_key` take (the output of ``policy.fields.key_fields``)."""


def new_secret() -> str:
    """A fresh secret: ``cgw-`` + 32 random bytes in base64url (256 bits)."""
    return secret_from(secrets.token_bytes(32))


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def row_to_key(row: sqlite3.Row) -> ApiKey:
    """An :class:`ApiKey` from an ``api_keys`` row."""
    models = _names(row["models"])
    return ApiKey(
        name=row["name"],
        prefix=row["prefix"],
        digest=row["digest"],
        owner=row["owner"],
        admin=bool(row["admin"]),
        accounts=_names(row["accounts"]),
        models=frozenset(models) if models is not None else None,
        rpm=row["rpm"],
        tpm=row["tpm"],
        tokens_per_day=row["tokens_per_day"],
        max_streams=row["max_streams"],
        expires_at=row["expires_at"],
        reasoning_mode=row["reasoning_mode"],
        max_effort=row["max_effort"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        old_prefix=row["old_prefix"],
        old_digest=row["old_digest"],
        grace_until=row["grace_until"],
    )


def list_keys(store: Store) -> list[ApiKey]:
    """Every key (revoked ones too), by name."""
    with store._read() as conn:
        return [row_to_key(r) for r in conn.execute("SELECT * FROM api_keys ORDER BY name")]


def get_key(store: Store, name: str) -> ApiKey | None:
    """The key called ``name``, or ``None``."""
    with store._read() as conn:
        row = conn.execute("SELECT * FROM api_keys WHERE name = ?", (name,)).fetchone()
    return row_to_key(row) if row else None


def count_keys(store: Store) -> int:
    """How many keys are stored (revoked ones too)."""
    with store._read() as conn:
        return int(conn.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0])


def _column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in _COLUMNS:
        if column not in fields:
            continue
        value = fields[column]
        if column in ("accounts", "models"):
            value = None if value is None else json.dumps(list(value))
        elif column == "admin":
            value = int(bool(value))
        out[column] = value
    return out


def _check_refs(conn: sqlite3.Connection, fields: Mapping[str, Any], name: str | None) -> None:
    """The owner and the accounts named must exist; the name must be free."""
    new_name = fields.get("name")
    taken = conn.execute("SELECT 1 FROM api_keys WHERE name = ?", (new_name,)).fetchone() is not None
    if new_name is not None and new_name != name and taken:
        raise NameTakenError(f"a key named '{new_name}' exists already")
    owner = fields.get("owner")
    if owner is not None and conn.execute("SELECT 1 FROM users WHERE name = ?", (owner,)).fetchone() is None:
        raise UnknownNameError(f"no user named '{owner}'", param="owner")
    for account in fields.get("accounts") or ():
        if conn.execute("SELECT 1 FROM accounts WHERE name = ?", (account,)).fetchone() is None:
            raise UnknownNameError(f"no account named '{account}'", param="accounts")


def create_key(
    store: Store, fields: Mapping[str, Any], secret: str, *, now: float, audit: Audit | None = None
) -> ApiKey:
    """Store a new key for ``secret`` (only its digest and prefix) with ``fields`` (``name`` required).

    Raises:
        NameTakenError: a key of that name exists.
        UnknownNameError: the owner or one of the accounts does not exist (``param`` says which).
    """
    values = _column_values(fields)
    with store._write() as conn:
        _check_refs(conn, fields, None)
        values.update(prefix=key_prefix(secret), digest=key_digest(secret), created_at=now)
        cols = ", ".join(values)
        conn.execute(
            f"INSERT INTO api_keys ({cols}) VALUES ({', '.join('?' for _ in values)})", tuple(values.values())
        )
        write_audit(conn, audit, now=now)
        row = conn.execute("SELECT * FROM api_keys WHERE name = ?", (values["name"],)).fetchone()
    return row_to_key(row)


def update_key(
    store: Store, name: str, fields: Mapping[str, Any], *, now: float, audit: Audit | None = None
) -> ApiKey | None:
    """Change ``fields`` of the key ``name`` (a rename moves its usage history too). Returns the key,
    or ``None`` if there is none.

    Raises:
        NameTakenError, UnknownNameError: as :func:`create_key`.
    """
    values = _column_values(fields)
    with store._write() as conn:
        if conn.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone() is None:
            return None
        _check_refs(conn, fields, name)
        if values:
            sets = ", ".join(f"{c} = ?" for c in values)
            conn.execute(f"UPDATE api_keys SET {sets} WHERE name = ?", (*values.values(), name))
        new_name = values.get("name", name)
        rename_key_usage(conn, name, new_name)
        write_audit(conn, audit, now=now)
        row = conn.execute("SELECT * FROM api_keys WHERE name = ?", (new_name,)).fetchone()
    return row_to_key(row)


def revoke_key(store: Store, name: str, *, now: float, audit: Audit | None = None) -> ApiKey | None:
    """Revoke the key ``name`` at ``now`` (kept for its usage history; revoking twice keeps the
    first time). Returns the key, or ``None`` if there is none."""
    with store._write() as conn:
        conn.execute(
            "UPDATE api_keys SET revoked_at = ?, grace_until = NULL WHERE name = ? AND revoked_at IS NULL",
            (now, name),
        )
        row = conn.execute("SELECT * FROM api_keys WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        write_audit(conn, audit, now=now)
    return row_to_key(row)


def rotate_key(
    store: Store, name: str, secret: str, *, grace_s: float, now: float, audit: Audit | None = None
) -> ApiKey | None:
    """Give the key ``name`` the new ``secret``; the old one stays valid ``grace_s`` seconds (0: none).
    Returns the key, or ``None`` if there is none."""
    with store._write() as conn:
        row = conn.execute("SELECT * FROM api_keys WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        old = (row["prefix"], row["digest"], now + grace_s) if grace_s > 0 else (None, None, None)
        conn.execute(
            "UPDATE api_keys SET prefix = ?, digest = ?, old_prefix = ?, old_digest = ?, grace_until = ? "
            "WHERE name = ?",
            (key_prefix(secret), key_digest(secret), *old, name),
        )
        write_audit(conn, audit, now=now)
        row = conn.execute("SELECT * FROM api_keys WHERE name = ?", (name,)).fetchone()
    return row_to_key(row)
