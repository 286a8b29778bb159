"""``codexgw users add|list|remove|passwd`` and ``codexgw audit`` (teams, issue 12).

Users sign in to the admin API and the dashboard; a user owns ChatGPT accounts and API keys
(``accounts set NAME --owner USER``, ``keys create --owner USER``). Passwords are read from the
terminal (asked twice) or, with ``--password-stdin``, as one line from stdin; they are hashed with
scrypt and never printed. Every change is written to the audit log as ``cli:<os user>``. A running
server follows within a second. Exit status 2 for a malformed value, 1 for a refused operation.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from codexgw.cli.common import CliError, open_store
from codexgw.policy.access import ROLES
from codexgw.policy.fields import FieldError, check_name

__all__ = ["actor", "audit", "check_owner", "duration_type", "give_account", "users"]


def actor() -> str:
    """The audit log's name for whoever runs the CLI: ``cli:<os user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


class _Duration(click.ParamType):
    """``90s``, ``30m``, ``1h``, ``30d`` or ``0``, to seconds (exit 2 otherwise)."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from codexgw.policy.durations import parse_duration

        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


duration_type = _Duration()


def check_owner(store_dir: Path, owner: str | None) -> None:
    """``login --owner USER`` must name a user, checked before the login starts.

    Raises:
        LoginError: no such user (the login flows' one-line error).
    """
    from codexgw.auth.login import LoginError
    from codexgw.store.users import get_user

    if owner is not None and get_user(open_store(store_dir), owner) is None:
        raise LoginError(f"no user named '{owner}'; add one with: codexgw users add {owner}")


def give_account(store_dir: Path, account: str, owner: str | None, *, say: Callable[[str], None]) -> None:
    """Make ``owner`` own ``account`` after a login with ``--owner`` (audited); no-op for ``None``."""
    if owner is None:
        return
    from codexgw.store.audit import Audit
    from codexgw.store.users import set_account_owner

    audit = Audit(actor(), "account.update", account, {"owner": owner, "via": "login"})
    set_account_owner(open_store(store_dir), account, owner, now=time.time(), audit=audit)
    say(f"{account} is owned by {owner}")


def _name(value: str, what: str) -> str:
    try:
        return check_name(value, what=what)
    except FieldError as exc:
        raise click.BadParameter(str(exc)) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.UsageError("--password-stdin: nothing on stdin")
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _hash(password: str) -> str:
    from codexgw.store import StoreError
    from codexgw.store.users import new_password_hash

    try:
        return new_password_hash(password)
    except StoreError as exc:
        raise click.BadParameter(str(exc), param_hint="password") from None


@click.group()
def users() -> None:
    """Manage the people who sign in to the admin API and own accounts and keys."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password as one line from stdin.")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add user NAME."""
    from codexgw.store import StoreError
    from codexgw.store.audit import Audit
    from codexgw.store.users import add_user

    name = _name(name, "the user name")
    hashed = _hash(_read_password(password_stdin))
    store = open_store(ctx.obj["store_dir"], create=True)
    try:
        add_user(
            store,
            name,
            role,
            hashed,
            now=time.time(),
            audit=Audit(actor(), "user.create", name, {"role": role}),
        )
    except StoreError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"added {role} {name}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def users_list(ctx: click.Context, as_json: bool) -> None:
    """List users (name, role, created; never a password)."""
    from codexgw.store.users import list_users

    rows = [u.public() for u in list_users(open_store(ctx.obj["store_dir"]))]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no users; add one with: codexgw users add NAME --role admin")
        return
    for row in rows:
        created = time.strftime("%Y-%m-%d", time.gmtime(row["created_at"]))
        click.echo(f"{row['name']:<24} {row['role']:<7} created {created}")


@users.command("remove")
@click.argument("name")
@click.pass_context
def users_remove(ctx: click.Context, name: str) -> None:
    """Remove user NAME: their sessions end, their keys are revoked, their accounts join the shared pool."""
    from codexgw.store import StoreError
    from codexgw.store.audit import Audit
    from codexgw.store.users import remove_user

    store = open_store(ctx.obj["store_dir"])
    try:
        removed = remove_user(store, name, now=time.time(), audit=Audit(actor(), "user.remove", name))
    except StoreError as exc:
        raise CliError(str(exc)) from None
    if removed is None:
        raise CliError(f"no user named '{name}'")
    click.echo(f"removed {name}")
    if removed.keys_revoked:
        click.echo(f"revoked their keys: {', '.join(removed.keys_revoked)}")
    if removed.accounts_unowned:
        click.echo(f"now in the shared pool: {', '.join(removed.accounts_unowned)}")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line from stdin.")
@click.pass_context
def users_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set user NAME's password (their sessions end)."""
    from codexgw.store.audit import Audit
    from codexgw.store.users import get_user, set_password

    store = open_store(ctx.obj["store_dir"])
    if get_user(store, name) is None:
        raise CliError(f"no user named '{name}'")
    hashed = _hash(_read_password(password_stdin))
    if not set_password(store, name, hashed, now=time.time(), audit=Audit(actor(), "user.password", name)):
        raise CliError(f"no user named '{name}'")
    click.echo(f"password of {name} changed")


@click.command("audit")
@click.option(
    "--since", type=duration_type, default="7d", show_default=True, help="How far back (90s, 30m, 1h, 30d)."
)
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def audit(ctx: click.Context, since: float, limit: int, as_json: bool) -> None:
    """Show who changed what (users, keys, accounts, the pool, settings), newest first."""
    from codexgw.store.audit import read_audit

    now = time.time()
    rows = read_audit(open_store(ctx.obj["store_dir"]), since=now - since if since else None, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no audit entries")
        return
    for row in rows:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
        detail = " ".join(f"{k}={v}" for k, v in sorted(row["detail"].items()))
        click.echo(f"{at}Z  {row['actor']:<16} {row['action']:<16} {row['target'] or '-'} {detail}".rstrip())
