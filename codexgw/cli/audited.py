"""The audit log for the CLI commands that change accounts, the pool or the store (teams contract §4).

``users``, ``keys`` and ``accounts set --owner`` write their audit entries in the change's own
transaction. The older account commands are audited here, from outside: :func:`audit_commands`
wraps their callbacks so that, once a command has succeeded, one entry is written as
``cli:<os user>`` with the command as its action (``account.enable``, ``pool.pin`` …), the account
it named as its target, and its non-secret options as the detail. A command that failed writes
nothing; a read-only command (``list``, ``usage``, ``status`` …) is not wrapped.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["AUDITED", "audit_commands"]

AUDITED: dict[tuple[str, str], str] = {
    ("accounts", "import"): "account.import",
    ("accounts", "enable"): "account.enable",
    ("accounts", "disable"): "account.disable",
    ("accounts", "rename"): "account.rename",
    ("accounts", "remove"): "account.remove",
    ("accounts", "reset"): "account.reset",
    ("accounts", "refresh"): "account.refresh",
    ("accounts", "export"): "account.export",
    ("accounts", "pin"): "pool.pin",
    ("accounts", "unpin"): "pool.unpin",
    ("accounts", "strategy"): "pool.strategy",
    ("login", "pkce"): "login.pkce",
    ("login", "device"): "login.device",
    ("store", "encrypt"): "store.encrypt",
    ("store", "decrypt"): "store.decrypt",
}
"""(group, command) → the audit action."""

_TARGETS = ("name", "old", "path")
_DETAIL = ("new", "weight", "all_accounts", "link", "revoke", "no_revoke", "relogin", "owner", "force")


def _record(store_dir: Path, action: str, params: dict[str, Any]) -> None:
    from codexgw.cli.users import actor
    from codexgw.store import Store, StoreError
    from codexgw.store.audit import Audit, record

    target = next((str(params[k]) for k in _TARGETS if params.get(k) is not None), None)
    detail = {k: params[k] for k in _DETAIL if params.get(k) not in (None, False)}
    try:  # the command succeeded; an audit failure must not turn that into an error
        store = Store(store_dir)
        if store.path.exists():
            record(store, Audit(actor(), action, target, detail), now=time.time())
    except (StoreError, OSError, ValueError):
        pass


def _wrap(callback: Callable[..., Any], action: str, group: str, name: str) -> Callable[..., Any]:
    @functools.wraps(callback)
    def audited(*args: Any, **kwargs: Any) -> Any:
        result = callback(*args, **kwargs)
        ctx = click.get_current_context()
        if group == "accounts" and name == "strategy" and kwargs.get("name") is None:
            return result  # shown, not changed
        store_dir = (ctx.find_root().obj or {}).get("store_dir")
        if store_dir is not None:
            _record(Path(store_dir), action, kwargs)
        return result

    return audited


def audit_commands(root: click.Group) -> None:
    """Wrap the callbacks of the :data:`AUDITED` commands of ``root`` (``codexgw``'s group)."""
    for (group, name), action in AUDITED.items():
        command = root.commands[group].commands.get(name) if group in root.commands else None  # type: ignore[attr-defined]
        if command is not None and command.callback is not None:
            command.callback = _wrap(command.callback, action, group, name)
