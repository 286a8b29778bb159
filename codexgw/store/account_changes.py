"""Several changes to one account in one transaction, for ``PATCH /api/accounts/{name}``.

``enabled``, ``weight``, ``owner`` and ``name`` change together or not at all, with the change's
audit entry; a rename carries the keys narrowed to the account and its usage history
(:mod:`codexgw.store.renames`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codexgw.store.audit import Audit, write_audit
from codexgw.store.models import NameTakenError, UnknownNameError, check_name
from codexgw.store.renames import rename_account_refs
from codexgw.store.sqlite import Store

__all__ = ["change_account"]


def change_account(
    store: Store, name: str, changes: Mapping[str, Any], *, now: float, audit: Audit | None = None
) -> bool:
    """Apply ``changes`` (any of ``enabled`` bool, ``weight`` float >= 0, ``owner`` user name or
    None, ``name``) to the account ``name``. Returns False if there is no such account.

    Raises:
        UnknownNameError: the owner is not a user (param ``owner``).
        NameTakenError: the new name belongs to another account.
        StoreError: the new name is invalid.
    """
    with store._write() as conn:
        row = conn.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()
        if row is None:
            return False
        sets: dict[str, Any] = {}
        if "enabled" in changes:
            sets["enabled"] = int(bool(changes["enabled"]))
        if "weight" in changes:
            sets["weight"] = float(changes["weight"])
        if "owner" in changes:
            owner = changes["owner"]
            if (
                owner is not None
                and conn.execute("SELECT 1 FROM users WHERE name = ?", (owner,)).fetchone() is None
            ):
                raise UnknownNameError(f"no user named '{owner}'", param="owner")
            sets["owner"] = owner
        new_name = changes.get("name", name)
        if new_name != name:
            check_name(new_name)
            if conn.execute("SELECT 1 FROM accounts WHERE name = ?", (new_name,)).fetchone() is not None:
                raise NameTakenError(f"name '{new_name}' is already used by another account")
            sets["name"] = new_name
        if sets:
            assignments = ", ".join(f"{column} = ?" for column in sets)
            conn.execute(
                f"UPDATE accounts SET {assignments}, updated_at = ? WHERE id = ?",
                (*sets.values(), now, row["id"]),
            )
        if new_name != name:
            rename_account_refs(conn, name, new_name)
        write_audit(conn, audit, now=now)
    return True
