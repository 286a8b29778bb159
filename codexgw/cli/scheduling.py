"""Scheduling commands of ``codexgw accounts``: ``set`` (weight, owner), ``pin``, ``unpin``, ``strategy``, ``usage``.

The first four write the store (``store/pool_settings.py``); a running server follows within
``accounts_poll_s`` (it polls the store's change generation). ``usage`` asks the Codex backend's
``/wham/usage`` directly with the stored tokens (codex-protocol.md §6.1), refreshing an expired
token through the same single-flight :class:`~codexgw.auth.refresh.Refresher` the server uses, so it
works with or without a server. Nothing here prints a token.

Register with :func:`register` on the ``accounts`` click group (:mod:`codexgw.cli.main` does).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import click

from codexgw.cli.common import CliError, open_store
from codexgw.cli.options import auth_url_option, upstream_option
from codexgw.pool.health import AccountStatus
from codexgw.pool.strategies import STRATEGY_NAMES

if TYPE_CHECKING:
    from codexgw.store import Account, Store

__all__ = ["COMMANDS", "register"]


def _account(store: Store, name: str) -> Account:
    account = store.get_account(name)
    if account is None:
        raise CliError(f"no account named '{name}'")
    return account


@click.command("set")
@click.argument("name")
@click.option(
    "--weight",
    type=click.FloatRange(min=0),
    help="Share for the weighted strategy (1 = normal, 0.5 = half, 0 = standby).",
)
@click.option("--owner", metavar="USER", help="The user who owns the account (their keys reach it).")
@click.option("--no-owner", is_flag=True, help="No owner: the account is in the shared pool only.")
@click.pass_context
def accounts_set(
    ctx: click.Context, name: str, weight: float | None, owner: str | None, no_owner: bool
) -> None:
    """Set account NAME's scheduling weight and/or its owner."""
    import time

    from codexgw.cli.users import actor
    from codexgw.store import StoreError
    from codexgw.store.audit import Audit
    from codexgw.store.pool_settings import set_weight
    from codexgw.store.users import set_account_owner

    if weight is None and owner is None and not no_owner:
        raise click.UsageError("give --weight, --owner USER or --no-owner")
    if owner is not None and no_owner:
        raise click.UsageError("--owner and --no-owner exclude each other")
    store = open_store(ctx.obj["store_dir"])
    if weight is not None:
        if not set_weight(store, name, weight):
            raise CliError(f"no account named '{name}'")
        click.echo(f"{name}: weight {weight:g}")
    if owner is not None or no_owner:
        audit = Audit(actor(), "account.update", name, {"owner": owner})
        try:
            found = set_account_owner(store, name, owner, now=time.time(), audit=audit)
        except StoreError as exc:
            raise CliError(str(exc)) from None
        if not found:
            raise CliError(f"no account named '{name}'")
        click.echo(f"{name}: owner {owner}" if owner else f"{name}: no owner (shared pool)")


@click.command("pin")
@click.argument("name")
@click.pass_context
def accounts_pin(ctx: click.Context, name: str) -> None:
    """Serve every request with account NAME only (strict: when it cannot serve, clients get its
    error, never another account) until `accounts unpin`."""
    from codexgw.store.pool_settings import set_pinned

    store = open_store(ctx.obj["store_dir"])
    account = _account(store, name)
    set_pinned(store, account.id)
    state = "" if account.eligible else f" (warning: it is {_state(account)})"
    click.echo(f"pinned {name}{state}")


@click.command("unpin")
@click.pass_context
def accounts_unpin(ctx: click.Context) -> None:
    """End a pin; the strategy chooses accounts again."""
    from codexgw.store.pool_settings import read_pool_settings, set_pinned

    store = open_store(ctx.obj["store_dir"])
    if read_pool_settings(store).pinned_account_id is None:
        click.echo("not pinned")
        return
    set_pinned(store, None)
    click.echo("unpinned")


@click.command("strategy")
@click.argument("name", type=click.Choice(STRATEGY_NAMES), required=False)
@click.pass_context
def accounts_strategy(ctx: click.Context, name: str | None) -> None:
    """Show or set the pool strategy (a running server switches within a second; while pinned the
    new strategy applies after unpinning)."""
    from codexgw.store.pool_settings import read_pool_settings, set_strategy

    store = open_store(ctx.obj["store_dir"])
    if name is None:
        click.echo(read_pool_settings(store).strategy or "round-robin")
        return
    set_strategy(store, name)
    click.echo(f"strategy {name}")


def _state(account: Account) -> str:
    if not account.enabled:
        return "disabled"
    return account.status + (f": {account.status_reason}" if account.status_reason else "")


@click.command("usage")
@click.argument("name", required=False)
@upstream_option
@auth_url_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (windows per account).")
@click.pass_context
def accounts_usage(
    ctx: click.Context, name: str | None, upstream: str | None, auth_url: str | None, as_json: bool
) -> None:
    """Ask the Codex backend for the quota windows of account NAME (all enabled accounts by default)."""
    import trio

    from codexgw import config

    store = open_store(ctx.obj["store_dir"])
    if name is not None:
        accounts = [_account(store, name)]
    else:
        accounts = [a for a in store.list_accounts() if a.enabled and a.status != AccountStatus.NEEDS_LOGIN]
        if not accounts:
            raise CliError("no enabled accounts")
    results = trio.run(
        _probe_all,
        store,
        accounts,
        (upstream or config.DEFAULT_UPSTREAM).rstrip("/"),
        (auth_url or config.DEFAULT_AUTH_URL).rstrip("/"),
    )
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        _print_usage(results)
    if all(r.get("error") for r in results):
        ctx.exit(1)


async def _probe_all(
    store: Store, accounts: list[Account], upstream: str, auth_url: str
) -> list[dict[str, Any]]:
    import httpx
    import trio

    from codexgw.auth.refresh import NeedsLogin, Refresher
    from codexgw.errors import UpstreamConnectionError
    from codexgw.oauth.tokens import RefreshError
    from codexgw.pool.quota import parse_usage_response
    from codexgw.store.models import ON_USE_MARGIN_S
    from codexgw.store.pool_settings import record_quota_readings
    from codexgw.upstream.prober import fetch_usage

    out: list[dict[str, Any]] = []
    readings: dict[int, dict[str, Any]] = {}
    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0)) as http:
        refresher = Refresher(store, http, auth_url=auth_url)
        for account in accounts:
            row: dict[str, Any] = {"name": account.name, "plan_type": account.plan_type}
            out.append(row)
            try:
                if account.needs_refresh(now=time.time(), margin_s=ON_USE_MARGIN_S):
                    account = await refresher.refresh(account)
                status, body = await fetch_usage(http, upstream, account)
                if status == 401:
                    account = await refresher.refresh(account, stale_access_token=account.access_token)
                    status, body = await fetch_usage(http, upstream, account)
            except (RefreshError, TimeoutError) as exc:
                if isinstance(exc, NeedsLogin):  # the refresher writes no status: we record it
                    store.set_status(account.id, AccountStatus.NEEDS_LOGIN, exc.status_reason)
                row["error"] = f"could not refresh the login: {exc}"
                continue
            except UpstreamConnectionError as exc:
                row["error"] = exc.message
                continue
            snapshot = parse_usage_response(body, now=time.time()) if status == 200 else None
            if snapshot is None:
                row["error"] = f"the usage endpoint answered HTTP {status}"
                continue
            readings[account.id] = snapshot.to_dict()
            row.update(
                plan_type=snapshot.plan_type or account.plan_type,
                limit_reached=snapshot.limit_reached,
                headroom_percent=snapshot.headroom_percent,
                observed_at=snapshot.observed_at,
                primary=None if snapshot.primary is None else vars(snapshot.primary),
                secondary=None if snapshot.secondary is None else vars(snapshot.secondary),
            )
    # A running server takes these in as its own probes, so `status` then says what this says.
    await trio.to_thread.run_sync(record_quota_readings, store, readings)
    return out


def _print_usage(results: list[dict[str, Any]]) -> None:
    from rich.console import Console

    from codexgw.cli.status import quota_bar, window_label

    console = Console(highlight=False)
    now = time.time()
    for row in results:
        head = f"[bold]{row['name']}[/bold] ({row.get('plan_type') or 'plan unknown'})"
        if row.get("error"):
            console.print(f"{head}: [red]{row['error']}[/red]")
            continue
        if row.get("limit_reached"):
            head += " [red]limit reached[/red]"
        console.print(head)
        for key in ("primary", "secondary"):
            window = row.get(key)
            if window:
                label = window_label(window.get("window_minutes"), key)
                console.print(f"  {label:>4}", quota_bar(window, now, width=20))


COMMANDS = (accounts_set, accounts_pin, accounts_unpin, accounts_strategy, accounts_usage)


def register(group: click.Group) -> None:
    """Add ``set``, ``pin``, ``unpin``, ``strategy`` and ``usage`` to the ``accounts`` group."""
    for command in COMMANDS:
        group.add_command(command)
