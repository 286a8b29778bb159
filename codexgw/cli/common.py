"""What the commands share: the one-line error, opening the store, and how times are shown.

Every command module imports these from here (one definition each). Top-level imports stay light
(click only); the store loads inside :func:`open_store`. Times are epoch seconds, durations seconds,
and ``now`` always comes in as an argument.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from codexgw.store import Account, Store

__all__ = [
    "NO_ACCOUNTS",
    "CliError",
    "default_codex_home",
    "describe_account",
    "format_countdown",
    "format_duration",
    "format_expiry",
    "format_since",
    "format_validity",
    "open_store",
]

NO_ACCOUNTS = "no accounts; add one with: codexgw accounts import ~/.codex/auth.json"
"""What ``accounts list`` and ``status`` print for an empty pool."""


class CliError(click.ClickException):
    """A failure reported as one ``error: <message>`` line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def open_store(store_dir: Path, *, error: Callable[[str], Exception] = CliError) -> Store:
    """Open (create and migrate) the store in ``store_dir``, with its passphrase when it is encrypted
    (from ``CODEXGW_STORE_KEY``, a key file or a systemd credential: :mod:`codexgw.cli.store_key`).

    Raises:
        CliError: (or ``error``, given the message) the store cannot be opened, or it is encrypted
            and the key is missing or wrong; the message is the one line of the
            :class:`~codexgw.store.StoreError` (or of the key source's problem).
    """
    from codexgw.cli.store_key import StoreKeyError, passphrase_from_environment
    from codexgw.store import Store, StoreError

    try:
        return Store.open(store_dir, passphrase=passphrase_from_environment())
    except (StoreError, StoreKeyError) as e:
        raise error(str(e)) from None


def default_codex_home() -> Path:
    """``$CODEX_HOME`` or ``~/.codex``: where the Codex CLI keeps ``auth.json`` and ``config.toml``
    (codex-protocol.md §5)."""
    env = os.environ.get("CODEX_HOME")
    return Path(env).expanduser() if env else Path.home() / ".codex"


def describe_account(account: Account) -> str:
    """``"ada@example.com, plus"``: the email and plan that are known, else the ChatGPT account id."""
    return ", ".join(x for x in (account.email, account.plan_type) if x) or account.chatgpt_account_id


def format_duration(seconds: float, *, fine: bool = False) -> str:
    """A duration in seconds (negative counts as 0) in its largest unit: ``42s``, ``5m``, ``3h``,
    ``2d``; with ``fine``, hours and days also show the next unit: ``3h05m``, ``2d04h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h" + (f"{(s % 3600) // 60:02d}m" if fine else "")
    return f"{s // 86400}d" + (f"{(s % 86400) // 3600:02d}h" if fine else "")


def format_expiry(expires_at: float | None, now: float) -> str:
    """``"in 42m"``, ``"expired 3h ago"`` or ``"unknown"`` for an access token's ``exp`` (epoch s)."""
    if expires_at is None:
        return "unknown"
    if expires_at > now:
        return f"in {format_duration(expires_at - now)}"
    return f"expired {format_duration(now - expires_at)} ago"


def format_since(when: float | None, now: float) -> str:
    """``"3h ago"`` for a past time (epoch s), ``"never"`` for ``None``."""
    if when is None:
        return "never"
    return f"{format_duration(now - when)} ago"


def format_validity(expires_at: float | None, now: float) -> str:
    """``"valid for 42m"`` (whole minutes, however many), ``"expired"`` or ``"expiry unknown"`` for an
    access token's ``exp`` (epoch s)."""
    if expires_at is None:
        return "expiry unknown"
    left = expires_at - now
    return f"valid for {int(left // 60)}m" if left > 0 else "expired"


def format_countdown(seconds: float) -> str:
    """``"04:59"``: whole minutes and seconds left (negative counts as 0)."""
    left = max(0, int(seconds))
    return f"{left // 60:02d}:{left % 60:02d}"
