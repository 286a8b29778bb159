"""The ``codexgw`` command line (click).

Top-level imports stay light (click only) so ``codexgw --help`` is fast; the store, rich and the
server stack are imported inside the commands that need them. No command ever prints a token: only
names, identity claims, times and (in ``--json``) token fingerprints.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from codexgw import __version__
from codexgw.cli.configure import configure
from codexgw.cli.options import auth_url_option, upstream_option
from codexgw.cli.scheduling import register as register_scheduling_commands
from codexgw.cli.status import status as status_command
from codexgw.config import default_store_dir
from codexgw.pool.strategies import STRATEGY_NAMES
from codexgw.translate.chat_stream import REASONING_MODES

if TYPE_CHECKING:
    from codexgw.store import Account, Store


class CliError(click.ClickException):
    """A failure reported as one ``error: <message>`` line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _open_store(ctx: click.Context) -> Store:
    from codexgw.store import Store, StoreError

    try:
        return Store.open(ctx.obj["store_dir"])
    except StoreError as e:
        raise CliError(str(e)) from None


def _ago(seconds: float) -> str:
    """Render a non-negative duration in seconds compactly: ``42s``, ``5m``, ``3h``, ``2d``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def format_expiry(expires_at: float | None, now: float) -> str:
    """``"in 42m"``, ``"expired 3h ago"`` or ``"unknown"`` for an access token's ``exp`` (epoch s)."""
    if expires_at is None:
        return "unknown"
    if expires_at > now:
        return f"in {_ago(expires_at - now)}"
    return f"expired {_ago(now - expires_at)} ago"


def format_since(when: float | None, now: float) -> str:
    """``"3h ago"`` for a past time (epoch s), ``"never"`` for ``None``."""
    if when is None:
        return "never"
    return f"{_ago(max(0.0, now - when))} ago"


def _describe(account: Account) -> str:
    return ", ".join(x for x in (account.email, account.plan_type) if x) or account.chatgpt_account_id


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CODEXGW_HOME",
    default=None,
    show_default="~/.codexgw",
    help="Store directory (accounts database). Env: CODEXGW_HOME.",
)
@click.version_option(__version__, prog_name="codexgw")
@click.pass_context
def main(ctx: click.Context, store_dir: Path | None) -> None:
    """codexgw: an OpenAI-compatible API over a pool of ChatGPT (Codex) logins."""
    ctx.ensure_object(dict)
    ctx.obj["store_dir"] = (store_dir or default_store_dir()).expanduser()


@main.group()
def accounts() -> None:
    """Manage the pool's ChatGPT accounts."""


@accounts.command("import")
@click.argument("path", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--name", help="Account name (default: the email's local part).")
@click.option(
    "--link",
    is_flag=True,
    help="Keep the account tied to this Codex auth.json: re-read it before every refresh, write "
    "rotated tokens back, so Codex and codexgw can share one login.",
)
@click.pass_context
def accounts_import(ctx: click.Context, path: Path, name: str | None, link: bool) -> None:
    """Import logins from PATH: a Codex/ChatMock auth.json or a codex-reverse accounts.json.

    Re-importing a login that is already stored updates its tokens.
    """
    from codexgw.store import StoreError
    from codexgw.store.importers import ImportFailed, load_accounts_file, load_codex_auth_json

    try:
        items = load_accounts_file(path)
        if link:
            if len(items) != 1 or items[0][0] is not None:
                raise click.UsageError("--link needs a Codex CLI auth.json (one login)")
            items = [(None, load_codex_auth_json(path))]
    except ImportFailed as e:
        raise CliError(str(e)) from None
    if name is not None:
        if len(items) != 1:
            raise click.UsageError(f"--name needs a file with one login; {path} has {len(items)}")
        items = [(name, items[0][1])]
    store = _open_store(ctx)
    try:
        results = store.upsert_accounts(items)
    except StoreError as e:
        raise CliError(f"{path}: {e}") from None
    for account, created in results:
        click.echo(f"{'imported' if created else 'updated'} {account.name} ({_describe(account)})")
    if link:
        [(account, _)] = results
        store.set_linked_path(account.id, str(path.expanduser().resolve()))
        click.echo(f"linked {account.name} to {path}: refreshes are shared with the Codex CLI")


@accounts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (token fingerprints, no tokens).")
@click.pass_context
def accounts_list(ctx: click.Context, as_json: bool) -> None:
    """List stored accounts: identity, status, token expiry. Never shows tokens."""
    store = _open_store(ctx)
    rows = store.list_accounts()
    if as_json:
        click.echo(json.dumps([a.to_public_dict() for a in rows], indent=2))
        return
    if not rows:
        click.echo("no accounts; add one with: codexgw accounts import ~/.codex/auth.json")
        return
    from rich.console import Console
    from rich.table import Table

    now = time.time()
    table = Table(box=None, header_style="bold")
    for col in ("name", "email", "plan", "status", "enabled", "access token", "last refresh"):
        table.add_column(col, no_wrap=col != "status")
    for a in rows:
        status = a.status + (f" ({a.status_reason})" if a.status_reason else "")
        table.add_row(
            a.name,
            a.email or "-",
            a.plan_type or "-",
            status,
            "yes" if a.enabled else "no",
            format_expiry(a.access_expires_at, now),
            format_since(a.last_refresh, now),
        )
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 200))
    console.print(table)


def _name_command(verb: str, doc: str) -> click.Command:
    @click.argument("name")
    @click.pass_context
    def command(ctx: click.Context, name: str) -> None:
        store = _open_store(ctx)
        ok = store.set_enabled(name, verb == "enable")
        if not ok:
            raise CliError(f"no account named '{name}'")
        click.echo(f"{verb}d {name}")

    command.__doc__ = doc
    return click.command(verb)(command)


accounts.add_command(_name_command("enable", "Let account NAME serve requests again."))
accounts.add_command(_name_command("disable", "Keep account NAME but stop routing requests to it."))


def _call(command: str, *args: Any, **kwargs: Any) -> None:
    """Run ``codexgw.cli.login.<command>``, imported lazily (it pulls in trio and httpx)."""
    from codexgw.auth.login import LoginError
    from codexgw.cli import login as commands

    try:
        getattr(commands, command)(*args, **kwargs)
    except LoginError as e:
        raise CliError(str(e)) from None


@accounts.command("refresh")
@click.argument("name", required=False)
@auth_url_option
@click.pass_context
def accounts_refresh(ctx: click.Context, name: str | None, auth_url: str) -> None:
    """Refresh the tokens of account NAME now (all accounts when NAME is left out).

    Safe while `codexgw serve` runs: refreshes are single-flight across processes.
    """
    _call("run_refresh", ctx.obj["store_dir"], auth_url=auth_url, name=name)


@accounts.command("remove")
@click.argument("name")
@click.option("--no-revoke", is_flag=True, help="Do not revoke the login at the OAuth server first.")
@auth_url_option
@click.pass_context
def accounts_remove(ctx: click.Context, name: str, no_revoke: bool, auth_url: str) -> None:
    """Revoke account NAME's login (best effort) and remove it from the store.

    Linked accounts (import --link) are never revoked: the Codex CLI shares that login.
    """
    _call("run_remove", ctx.obj["store_dir"], auth_url=auth_url, name=name, revoke=not no_revoke)


@accounts.command("export")
@click.argument("name")
@click.option(
    "--codex-auth",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the Codex CLI auth.json [default: $CODEX_HOME/auth.json or ~/.codex/auth.json].",
)
@click.option("--force", is_flag=True, help="Overwrite a file holding another or a newer login.")
@click.option("--link", is_flag=True, help="Also link the account to the written file (see import --link).")
@click.pass_context
def accounts_export(ctx: click.Context, name: str, target: Path | None, force: bool, link: bool) -> None:
    """Write account NAME as a Codex CLI auth.json (mode 0600, atomic), so `codex` can use it."""
    _call("run_export", ctx.obj["store_dir"], name=name, target=target, force=force, link=link)


@main.group()
def login() -> None:
    """Add a ChatGPT account by signing in (browser or device code)."""


@login.command("pkce")
@click.option("--name", help="Account name (default: the email's local part).")
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
@click.option("--timeout", default=300, show_default=True, type=click.IntRange(1), help="Seconds to wait.")
@click.option(
    "--port",
    default=1455,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Local callback port (1455 is the one ChatGPT redirects to).",
)
@click.option(
    "--api-key-exchange", is_flag=True, help="Also exchange the id_token for an API key and store it."
)
@auth_url_option
@click.pass_context
def login_pkce(
    ctx: click.Context,
    name: str | None,
    no_browser: bool,
    timeout: int,
    port: int,
    api_key_exchange: bool,
    auth_url: str,
) -> None:
    """Sign in with a browser (OAuth + PKCE, as `codex login` does).

    Over SSH: forward the port (ssh -L 1455:127.0.0.1:1455 host) or paste the final URL here.
    """
    _call(
        "run_pkce",
        ctx.obj["store_dir"],
        auth_url=auth_url,
        name=name,
        port=port,
        timeout_s=float(timeout),
        open_browser=not no_browser,
        api_key_exchange=api_key_exchange,
    )


@login.command("device")
@click.option("--name", help="Account name (default: the email's local part).")
@click.option("--min-poll-interval", default=1.0, hidden=True, type=click.FloatRange(0))
@auth_url_option
@click.pass_context
def login_device(ctx: click.Context, name: str | None, min_poll_interval: float, auth_url: str) -> None:
    """Sign in with a device code (for headless machines: approve on any other device)."""
    _call("run_device", ctx.obj["store_dir"], auth_url=auth_url, name=name, min_interval_s=min_poll_interval)


@accounts.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_context
def accounts_rename(ctx: click.Context, old: str, new: str) -> None:
    """Rename account OLD to NEW."""
    from codexgw.store import StoreError

    store = _open_store(ctx)
    try:
        ok = store.rename_account(old, new)
    except StoreError as e:
        raise CliError(str(e)) from None
    if not ok:
        raise CliError(f"no account named '{old}'")
    click.echo(f"renamed {old} to {new}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0 = any)."
)
@upstream_option
@auth_url_option
@click.option(
    "--retries", default=3, show_default=True, type=click.IntRange(0), help="Max failovers per request."
)
@click.option(
    "--api-key",
    envvar="CODEXGW_API_KEY",
    default=None,
    help="Key clients must send as a Bearer token; required off loopback. Env: CODEXGW_API_KEY.",
)
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--reasoning-mode",
    type=click.Choice(REASONING_MODES),
    default="content",
    show_default=True,
    help="How Chat Completions show reasoning by default.",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGY_NAMES),
    default=None,
    help="Pool strategy; saved in the store (change it later with `accounts strategy`) "
    "[default: the stored one, else round-robin].",
)
@click.option(
    "--probe-interval",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between /wham/usage quota probes of each account (0 = never).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    upstream: str | None,
    auth_url: str | None,
    retries: int,
    api_key: str | None,
    certfile: str | None,
    keyfile: str | None,
    log_format: str,
    reasoning_mode: str,
    strategy: str | None,
    probe_interval: float,
) -> None:
    """Run the OpenAI-compatible gateway."""
    from codexgw import config

    if (certfile is None) != (keyfile is None):
        raise click.UsageError("--certfile and --keyfile go together")
    settings = config.Settings(
        store_dir=ctx.obj["store_dir"],
        upstream_url=upstream or config.DEFAULT_UPSTREAM,
        auth_url=auth_url or config.DEFAULT_AUTH_URL,
        host=host,
        port=port,
        retries=retries,
        api_key=api_key or None,
        certfile=certfile,
        keyfile=keyfile,
        log_format=log_format,
        reasoning_mode=reasoning_mode,
        strategy=strategy,
        probe_interval_s=probe_interval,
    )
    if not settings.is_loopback and not settings.api_key:
        raise click.UsageError(
            f"refusing to listen on {host} without an API key; pass --api-key (or CODEXGW_API_KEY)"
        )
    from codexgw import serve as server  # the server stack is heavy: import only when serving

    server.run(settings)


register_scheduling_commands(accounts)  # accounts set/pin/unpin/strategy/usage (codexgw/accounts_cli.py)
main.add_command(status_command)  # codexgw status (codexgw/status_cli.py)
main.add_command(configure)  # codexgw configure codex (codexgw/configure.py)
