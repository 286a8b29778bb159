"""Server settings changed through the admin API (``PATCH /api/settings``), kept in the store.

Three settings: ``reasoning_mode`` (the default display of reasoning in Chat Completions),
``probe_interval_s`` and ``default_cooldown_s`` (seconds). They live in the ``pool_settings`` table
(keys ``setting.<name>``, values as text), so writing one bumps the store's generation and every
server of the store follows within a second; a stored value wins over ``serve``'s flag.
"""

from __future__ import annotations

import math
from typing import Any

from codexgw.store.audit import Audit, write_audit
from codexgw.store.sqlite import Store

__all__ = ["SETTINGS", "read_settings", "write_settings"]

SETTINGS = ("reasoning_mode", "probe_interval_s", "default_cooldown_s")
_PREFIX = "setting."


def _parse(name: str, text: str) -> Any:
    if name == "reasoning_mode":
        return text
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(name)
    return value


def read_settings(store: Store) -> dict[str, Any]:
    """The settings stored (only those ever set; unreadable values are skipped)."""
    with store._read() as conn:
        rows = conn.execute("SELECT key, value FROM pool_settings WHERE key LIKE 'setting.%'").fetchall()
    out: dict[str, Any] = {}
    for key, value in rows:
        name = key[len(_PREFIX) :]
        if name in SETTINGS and value is not None:
            try:
                out[name] = _parse(name, value)
            except ValueError:
                continue
    return out


def write_settings(store: Store, values: dict[str, Any], *, now: float, audit: Audit | None = None) -> None:
    """Store ``values`` (names of :data:`SETTINGS`, already checked) in one transaction."""
    with store._write() as conn:
        for name, value in values.items():
            conn.execute(
                "INSERT INTO pool_settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value",
                (_PREFIX + name, str(value)),
            )
        write_audit(conn, audit, now=now)
