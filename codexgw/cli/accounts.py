"""``codexgw accounts``: import, list, enable, disable, rename, remove (one or ``--all``), export and
refresh logins.

``import``, ``list``, ``enable``, ``disable`` and ``rename`` work on the store alone; ``remove``,
``export`` and ``refresh`` run the flows of :mod:`codexgw.cli.login` (they talk to the OAuth server or
write a Codex ``auth.json``). The scheduling commands of the same group live in
:mod:`codexgw.cli.scheduling`; :mod:`codexgw.cli.main` adds them. Nothing here prints a token.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from codexgw.cli.common import (
    CliError,
    cli_name,
    describe_account,
    format_expiry,
    format_since,
    no_accounts,
    open_store,
)
from codexgw.cli.flows import call_flow, run_export, run_refresh, run_remove
from codexgw.cli.options import auth_url_option
from codexgw.cli.tables import Col, fit_table, fit_widths, natural_widths, table_width
from codexgw.cli.tables import console as table_console

if TYPE_CHECKING:
    from codexgw.store import Account, Store

__all__ = ["accounts"]


@click.group()
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
    """Import logins from PATH (the format is detected).

    Reads a Codex/ChatMock auth.json, codex-reverse's accounts.json, codex-multi-auth's (and
    codex-app-account-router's) ~/.codex/multi-auth/openai-accounts.json, opencode-multi-auth's
    accounts.json (encrypted: set CODEX_SOFT_STORE_PASSPHRASE), and CLIProxyAPI's Codex credential
    files (a codex-*.json, or the directory holding them). Re-importing a login that is already
    stored updates its tokens.
    """
    import os

    from codexgw.store import StoreError
    from codexgw.store.importers import ImportFailed, load_codex_auth_json, read_logins

    try:
        logins = read_logins(path, passphrase=os.environ.get("CODEX_SOFT_STORE_PASSPHRASE") or None)
        items = logins.items
        if link:
            if logins.format != "Codex auth.json":
                raise click.UsageError("--link needs a Codex CLI auth.json (one login)")
            items = [(None, load_codex_auth_json(path))]
    except ImportFailed as e:
        raise CliError(str(e)) from None
    if name is not None:
        if len(items) != 1:
            raise click.UsageError(f"--name needs a file with one login; {path} has {len(items)}")
        items = [(name, items[0][1])]
    store = open_store(ctx.obj["store_dir"], create=True)
    names = {a.id: a.name for a in store.list_accounts()}
    try:
        results = store.upsert_accounts(items)
    except StoreError as e:
        raise CliError(f"{path}: {e}") from None
    if logins.format not in ("Codex auth.json", "codex-reverse accounts.json"):
        click.echo(f"read {path} as {logins.format}")
    for account, created in results:
        before = names.get(account.id)
        renamed = f"; renamed from {before}" if before is not None and before != account.name else ""
        verb = "imported" if created else "updated"
        click.echo(f"{verb} {account.name} ({describe_account(account)}{renamed})")
    for line in logins.skipped:
        click.echo(f"skipped {line}", err=True)
    if link:
        [(account, _)] = results
        store.set_linked_path(account.id, str(path.expanduser().resolve()))
        click.echo(f"linked {account.name} to {path}: refreshes are shared with the Codex CLI")


LIST_COLUMNS = (
    Col("name", shrink=True, min_width=12),
    Col("email", shrink=True, min_width=12),
    Col("plan", optional=True),
    Col("status"),  # the status word is never cut; a reason after it may be
    Col("enabled", optional=True),
    Col("access token"),
    Col("last refresh", optional=True),
)
"""``accounts list`` columns: the status and the token's expiry are never cut."""


@accounts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (token fingerprints, no tokens).")
@click.option("--wide", is_flag=True, help="Show everything: whole names, emails and status reasons.")
@click.pass_context
def accounts_list(ctx: click.Context, as_json: bool, wide: bool) -> None:
    """List stored accounts: identity, status, token expiry. Never shows tokens."""
    store = open_store(ctx.obj["store_dir"])
    rows = store.list_accounts()
    if as_json:
        click.echo(json.dumps([a.to_public_dict() for a in rows], indent=2))
        return
    if not rows:
        click.echo(no_accounts())
        return
    from rich.markup import escape

    now = time.time()
    cells = [
        [
            escape(a.name),
            escape(a.email or "-"),
            a.plan_type or "-",
            escape(a.status + (f" ({a.status_reason})" if a.status_reason else "")),
            "yes" if a.enabled else "no",
            format_expiry(a.access_expires_at, now),
            format_since(a.last_refresh, now),
        ]
        for a in rows
    ]
    columns = list(LIST_COLUMNS)
    columns[3] = Col("status", shrink=True, min_width=max(len("status"), *(len(a.status) + 1 for a in rows)))
    out = table_console(wide=wide)
    if wide:
        out.width = max(out.width, table_width(columns, cells))
    out.print(fit_table(columns, cells, out.width, wide=wide))
    if not wide and fit_widths(columns, cells, out.width) != natural_widths(columns, cells):
        out.print("[dim](shortened to fit; --wide or --json shows all of it)[/dim]")


def _name_command(verb: str, doc: str) -> click.Command:
    @click.argument("name")
    @click.pass_context
    def command(ctx: click.Context, name: str) -> None:
        store = open_store(ctx.obj["store_dir"])
        ok = store.set_enabled(name, verb == "enable")
        if not ok:
            raise CliError(f"no account named '{name}'")
        if verb == "enable":  # "let it serve again" also ends a cooldown, as `accounts reset` does
            _reset_cooldown(store, name)
        click.echo(f"{verb}d {name}")

    command.__doc__ = doc
    return click.command(verb)(command)


def _reset_cooldown(store: Store, name: str) -> Account:
    from codexgw.store.pool_settings import request_cooldown_reset

    account = store.get_account(name)
    if account is None:
        raise CliError(f"no account named '{name}'")
    request_cooldown_reset(store, account.id)
    return account


accounts.add_command(
    _name_command("enable", "Let account NAME serve requests again (and end any cooldown now).")
)
accounts.add_command(_name_command("disable", "Keep account NAME but stop routing requests to it."))


@accounts.command("reset")
@click.argument("name")
@click.pass_context
def accounts_reset(ctx: click.Context, name: str) -> None:
    """End account NAME's cooldown now (after a usage limit, a rate limit, a refused request): a
    running server puts it back in rotation within a second. The next request tells whether the
    limit really is over."""
    account = _reset_cooldown(open_store(ctx.obj["store_dir"]), name)
    click.echo(f"reset {name}: a running server ends its cooldown within a second")
    if not account.enabled:
        click.echo(f"note: {name} is disabled; `{cli_name()} accounts enable {name}` lets it serve", err=True)
    elif not account.eligible:
        click.echo(
            f"note: {name} is {account.status} ({account.status_reason or 'no reason stored'}), which a "
            f"reset does not change; `{cli_name()} login pkce --name {name} --relogin` signs it in again",
            err=True,
        )


@accounts.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_context
def accounts_rename(ctx: click.Context, old: str, new: str) -> None:
    """Rename account OLD to NEW."""
    from codexgw.store import StoreError

    store = open_store(ctx.obj["store_dir"])
    try:
        ok = store.rename_account(old, new)
    except StoreError as e:
        raise CliError(str(e)) from None
    if not ok:
        raise CliError(f"no account named '{old}'")
    click.echo(f"renamed {old} to {new}")


@accounts.command("refresh")
@click.argument("name", required=False)
@auth_url_option
@click.pass_context
def accounts_refresh(ctx: click.Context, name: str | None, auth_url: str) -> None:
    """Refresh the tokens of account NAME now (all accounts when NAME is left out).

    Safe while `codexgw serve` runs: refreshes are single-flight across processes.
    """
    call_flow(run_refresh, ctx.obj["store_dir"], auth_url=auth_url, name=name)


@accounts.command("remove")
@click.argument("name", required=False)
@click.option(
    "--all", "remove_all", is_flag=True, help="Remove every account (each revoked first, as for NAME)."
)
@click.option("--no-revoke", is_flag=True, help="Do not revoke the login at the OAuth server first.")
@auth_url_option
@click.pass_context
def accounts_remove(
    ctx: click.Context, name: str | None, remove_all: bool, no_revoke: bool, auth_url: str
) -> None:
    """Revoke account NAME's login (best effort) and remove it from the store; --all for every account.

    Linked accounts (import --link) are never revoked: the Codex CLI shares that login.
    """
    if (name is None) == (not remove_all):
        raise click.UsageError("name one account, or pass --all (not both)")
    names = [name] if name is not None else [a.name for a in open_store(ctx.obj["store_dir"]).list_accounts()]
    if not names:
        click.echo(no_accounts())
    for each in names:
        call_flow(run_remove, ctx.obj["store_dir"], auth_url=auth_url, name=each, revoke=not no_revoke)


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
    call_flow(run_export, ctx.obj["store_dir"], name=name, target=target, force=force, link=link)
