"""The dashboard's last two actions on the command line (issue 13): ``settings`` and
``users set NAME --role ROLE``.

Both change the store in one transaction with their audit entry (``cli:<os user>``), as the rest of
the teams CLI does; a running server follows within a second (the store generation it polls).
"""

from __future__ import annotations

import json
import time

import click

from codexgw.cli.common import CliError, open_store
from codexgw.policy.access import ROLES
from codexgw.translate.chat_stream import REASONING_MODES

__all__ = ["register", "settings", "users_set"]

SETTING_NAMES = ("reasoning_mode", "probe_interval_s", "default_cooldown_s")
"""What ``GET /api/settings`` shows and the dashboard's Settings page edits."""


@click.command("settings")
@click.option(
    "--reasoning-mode", type=click.Choice(REASONING_MODES), help="Default reasoning display in chat."
)
@click.option(
    "--probe-interval", type=click.FloatRange(min=0), help="Seconds between quota probes (0 = never)."
)
@click.option(
    "--default-cooldown",
    type=click.FloatRange(min=0),
    help="Seconds of rest after a 429 that names no reset.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the stored settings as JSON.")
@click.pass_context
def settings(
    ctx: click.Context,
    reasoning_mode: str | None,
    probe_interval: float | None,
    default_cooldown: float | None,
    as_json: bool,
) -> None:
    """Show or change the server settings (the dashboard's Settings page, PATCH /api/settings).

    A stored setting wins over serve's flag; one never stored follows the flag.
    """
    from codexgw.cli.users import actor
    from codexgw.store.audit import Audit
    from codexgw.store.settings import read_settings, write_settings

    store = open_store(ctx.obj["store_dir"])
    values = {
        name: value
        for name, value in zip(SETTING_NAMES, (reasoning_mode, probe_interval, default_cooldown), strict=True)
        if value is not None
    }
    if values:
        write_settings(store, values, now=time.time(), audit=Audit(actor(), "settings.update", None, values))
    stored = read_settings(store)
    if as_json:
        click.echo(json.dumps(stored, indent=2))
        return
    for name in SETTING_NAMES:
        click.echo(f"{name:<20} {stored.get(name, '(serve flag)')}")


@click.command("set")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="admin or member.")
@click.pass_context
def users_set(ctx: click.Context, name: str, role: str) -> None:
    """Change user NAME's role (the last admin stays an admin)."""
    from codexgw.cli.users import actor
    from codexgw.store import StoreError
    from codexgw.store.audit import Audit
    from codexgw.store.users import set_role

    store = open_store(ctx.obj["store_dir"])
    audit = Audit(actor(), "user.update", name, {"role": role})
    try:
        user = set_role(store, name, role, now=time.time(), audit=audit)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    if user is None:
        raise CliError(f"no user named '{name}'")
    click.echo(f"{name} is now {role}")


def register(main: click.Group, users: click.Group) -> None:
    """Add ``settings`` to the root group and ``set`` to ``users``."""
    main.add_command(settings)
    users.add_command(users_set)
