"""Writing a login's tokens into the ``accounts`` table: identity, plan and expiry come from the
tokens' claims (codex-protocol.md §3-§4).

Both functions are called by :class:`~codexgw.store.sqlite.Store` inside its ``BEGIN IMMEDIATE``
transactions (:meth:`~codexgw.store.sqlite.Store.upsert_account`,
:meth:`~codexgw.store.sqlite.Store.save_tokens`); they never commit. The claims are read with the
sans-IO :mod:`codexgw.oauth.jwt`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from codexgw.oauth.jwt import (
    InvalidJWTError,
    access_token_expiry,
    identity_from_id_token,
    plan_type_from_access_token,
)
from codexgw.pool.health import AccountStatus
from codexgw.store.crypto import Opener
from codexgw.store.models import Account, StoreError, TokenSet, check_name, default_name, row_to_account

PLAIN = Opener()
"""The opener of an unencrypted store."""

__all__ = ["refreshed_columns", "upsert_account_row"]


def upsert_account_row(
    conn: sqlite3.Connection, tokens: TokenSet, name: str | None, now: float, opener: Opener = PLAIN
) -> tuple[Account, bool]:
    """Insert or update the row of the login ``tokens`` on ``conn`` (inside the caller's write).

    The matching rule, the name and the columns written are :meth:`Store.upsert_account`'s; the
    tokens are stored through ``opener`` (encrypted in an encrypted store).

    Returns:
        ``(account, created)``.

    Raises:
        StoreError: id_token not a JWT, no account id anywhere, bad or taken name.
    """
    try:
        claims = identity_from_id_token(tokens.id_token)
    except InvalidJWTError as e:
        raise StoreError(f"id_token is not a valid JWT: {e}") from None
    acct = claims.chatgpt_account_id or tokens.account_id
    if not acct:
        raise StoreError(
            "cannot tell which ChatGPT account these tokens belong to: the id_token has no "
            "chatgpt_account_id claim and no account_id was given"
        )
    if name is not None:
        check_name(name)
    plan = claims.plan_type or plan_type_from_access_token(tokens.access_token)
    user_id = claims.chatgpt_user_id
    rows = conn.execute("SELECT * FROM accounts WHERE chatgpt_account_id = ? ORDER BY id", (acct,)).fetchall()
    match = next((r for r in rows if user_id and r["user_id"] == user_id), None)
    if match is None:
        match = next((r for r in rows if not user_id or not r["user_id"]), None)

    def holder(n: str) -> int | None:
        row = conn.execute("SELECT id FROM accounts WHERE name = ?", (n,)).fetchone()
        return None if row is None else int(row["id"])

    if name is not None and holder(name) not in (None, match["id"] if match else None):
        raise StoreError(f"name '{name}' is already used by another account")
    values: dict[str, Any] = {
        "chatgpt_account_id": acct,
        "user_id": user_id,
        "email": claims.email,
        "plan_type": plan,
        "fedramp": int(claims.fedramp),
        "id_token": opener.seal(tokens.id_token, "accounts.id_token"),
        "access_token": opener.seal(tokens.access_token, "accounts.access_token"),
        "refresh_token": opener.seal(tokens.refresh_token, "accounts.refresh_token"),
        "access_expires_at": access_token_expiry(tokens.access_token),
        "last_refresh": tokens.last_refresh,
        "status": AccountStatus.ACTIVE,
        "status_reason": None,
        "updated_at": now,
    }
    if tokens.api_key is not None:
        values["api_key"] = opener.seal(tokens.api_key, "accounts.api_key")
    if match is not None:
        if name is not None:
            values["name"] = name
        for key in ("user_id", "email", "plan_type", "last_refresh"):
            if values[key] is None:
                values[key] = match[key]
        sets = ", ".join(f"{k} = :{k}" for k in values)
        conn.execute(f"UPDATE accounts SET {sets} WHERE id = :id", {**values, "id": match["id"]})
        row_id = int(match["id"])
    else:
        if name is None:
            base = default_name(claims.email)
            name, n = base, 1
            while holder(name) is not None:
                n += 1
                name = f"{base}-{n}"
        values.update(name=name, created_at=now, enabled=1)
        cols = ", ".join(values)
        params = ", ".join(f":{k}" for k in values)
        row_id = int(conn.execute(f"INSERT INTO accounts ({cols}) VALUES ({params})", values).lastrowid)
    row = conn.execute("SELECT * FROM accounts WHERE id = ?", (row_id,)).fetchone()
    return row_to_account(row, opener), match is None


def refreshed_columns(
    *,
    access_token: str | None,
    refresh_token: str | None,
    id_token: str | None,
    now: float,
    opener: Opener = PLAIN,
) -> dict[str, Any]:
    """The ``accounts`` columns a refresh result sets (codex-protocol.md §3): ``last_refresh`` and
    ``updated_at`` = ``now``, status ``active``; each token given (not ``None``) with what it says:
    ``access_expires_at`` and plan from the access token, email, user id, fedramp and plan from the
    id_token (an id_token that does not parse is still stored, its claims skipped).
    ``chatgpt_account_id`` is never among them. Tokens are stored through ``opener``.
    """
    values: dict[str, Any] = {
        "last_refresh": now,
        "updated_at": now,
        "status": AccountStatus.ACTIVE,
        "status_reason": None,
    }
    plan = None
    if id_token is not None:
        values["id_token"] = opener.seal(id_token, "accounts.id_token")
        try:
            claims = identity_from_id_token(id_token)
        except InvalidJWTError:
            pass
        else:
            plan = claims.plan_type
            if claims.email:
                values["email"] = claims.email
            if claims.chatgpt_user_id:
                values["user_id"] = claims.chatgpt_user_id
            values["fedramp"] = int(claims.fedramp)
    if access_token is not None:
        values["access_token"] = opener.seal(access_token, "accounts.access_token")
        values["access_expires_at"] = access_token_expiry(access_token)
        plan = plan or plan_type_from_access_token(access_token)
    if refresh_token is not None:
        values["refresh_token"] = opener.seal(refresh_token, "accounts.refresh_token")
    if plan:
        values["plan_type"] = plan
    return values
