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
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliError",
    "Interrupted",
    "cli_name",
    "default_codex_home",
    "describe_account",
    "format_countdown",
    "format_duration",
    "format_expiry",
    "format_since",
    "format_validity",
    "no_accounts",
    "open_store",
    "store_option",
]

EXIT_FAILURE = 1
"""Exit status of a command that failed (``error: …`` said why)."""
EXIT_USAGE = 2
"""Exit status of a usage error: a wrong option or argument, or a ``serve`` that cannot start."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, as shells report it)."""


def cli_name() -> str:
    """The command as the user ran it (``./codexgw.pyz``, ``codexgw`` …), for hints: the root
    context's program name, else :func:`codexgw.config.command_name`."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().info_name:
        return str(ctx.find_root().info_name)
    from codexgw.config import command_name

    return command_name()


def no_accounts() -> str:
    """What ``accounts list`` and ``status`` print for an empty pool."""
    cli = cli_name()
    return f"no accounts; add one with: {cli} login pkce, or {cli} accounts import ~/.codex/auth.json"


class CliError(click.ClickException):
    """A failure reported as one ``error: <message>`` line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class Interrupted(CliError):
    """Ctrl-C during a command: ``error: interrupted``, exit status 130."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)


def _set_store(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        root = ctx.find_root()
        root.ensure_object(dict)
        root.obj["store_dir"] = value.expanduser()
        root.obj["store_source"] = "flag --store"
        if ctx.obj is not root.obj:
            ctx.ensure_object(dict)
            ctx.obj["store_dir"] = value.expanduser()


def store_option(command: click.Command) -> click.Command:
    """Add ``--store DIR`` to ``command`` too, so the global option also works after the command
    (``accounts list --store X``); given there, it wins over the one before."""
    command.params.append(
        click.Option(
            ["--store"],
            type=click.Path(file_okay=False, path_type=Path),
            expose_value=False,
            is_eager=True,
            callback=_set_store,
            help="Store directory (as the global --store).",
        )
    )
    return command


def open_store(
    store_dir: Path, *, create: bool = False, error: Callable[[str], Exception] = CliError
) -> Store:
    """Open (and migrate) the store in ``store_dir``, with its passphrase when it is encrypted
    (from ``CODEXGW_STORE_KEY``, a key file or a systemd credential: :mod:`codexgw.cli.store_key`);
    with ``create``, create it when missing (the commands that add an account: login, import).

    Raises:
        CliError: (or ``error``, given the message) the store does not exist (and not ``create``):
            the message names the path and how to add an account; or it cannot be opened: the
            :class:`~codexgw.store.StoreError`'s one line (also when it is encrypted and the key is
            missing or wrong).
    """
    from codexgw.cli.store_key import StoreKeyError, passphrase_from_environment
    from codexgw.store import Store, StoreError
    from codexgw.store.sqlite import DB_FILENAME

    if not create and not (Path(store_dir) / DB_FILENAME).exists():
        cli = cli_name()
        raise error(
            f"no store at {store_dir} yet (or a mistyped --store or CODEXGW_HOME); "
            f"add the first account with: {cli} login pkce, or {cli} accounts import ~/.codex/auth.json"
        )
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
