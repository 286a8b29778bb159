"""``codexgw keys create|list|set|revoke|rotate|usage``: API keys with a policy each (issue 12).

A key's secret (``cgw-`` + 43 characters) is printed once, by ``create`` and ``rotate``; the store
keeps its SHA-256 digest and the visible prefix (``cgw-AbCd1234``), which every other command
shows. Limits take positive integers (``0`` = no limit); ``--expires`` a duration (``30d``, ``0`` =
never) or a date (``YYYY-MM-DD``, 00:00 UTC; a past one expires the key at once); ``--accounts``
and ``--models`` comma lists (``''`` = none). A running server follows within a second. Exit status
2 for a malformed value, 1 for a refused operation (unknown name, name taken).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from codexgw.cli.common import CliError, format_duration, format_since, open_store
from codexgw.cli.users import actor, duration_type
from codexgw.policy.fields import MAX_EFFORTS, FieldError, key_fields
from codexgw.translate.chat_chunks import REASONING_MODES

__all__ = ["keys"]

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    "owner",
    "accounts",
    "models",
    "rpm",
    "tpm",
    "tokens_per_day",
    "max_streams",
    "expires",
    "reasoning_mode",
    "max_effort",
    "admin",
)


def _policy_options(fn: F) -> F:
    """The options ``create`` and ``set`` share (all default to "not given")."""
    options = [
        click.option(
            "--owner",
            metavar="USER",
            help="The user who owns the key ('' = nobody): it reaches only their accounts.",
        ),
        click.option("--accounts", metavar="A,B", help="Only these accounts ('' = no narrowing)."),
        click.option(
            "--models",
            metavar="M,...",
            help="Only these models ('' = all); gpt-5.5 also allows gpt-5.5-high.",
        ),
        click.option("--rpm", metavar="N", help="Requests per minute (0 = no limit)."),
        click.option("--tpm", metavar="N", help="Tokens per minute, input + output (0 = no limit)."),
        click.option("--tokens-per-day", metavar="N", help="Tokens per UTC day (0 = no limit)."),
        click.option("--max-streams", metavar="N", help="Requests in flight at once (0 = no limit)."),
        click.option(
            "--expires",
            metavar="30d|YYYY-MM-DD",
            help="Expiry: a duration from now, a date (UTC), or 0 = never.",
        ),
        click.option(
            "--reasoning-mode",
            type=click.Choice([*REASONING_MODES, ""]),
            help="Default reasoning display in Chat Completions.",
        ),
        click.option(
            "--max-effort",
            type=click.Choice([*MAX_EFFORTS, ""]),
            help="Effort ceiling: a higher effort is lowered.",
        ),
        click.option("--admin/--no-admin", default=None, help="The key may call the admin API as an admin."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _fields(given: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
    """The store values of the options given (``None`` = not given); a bad one exits 2."""
    data = {k: v for k, v in given.items() if k in _OPTIONS and v is not None}
    if data.get("owner") == "":
        data["owner"] = None
    if name is not None:
        data["name"] = name
    try:
        return key_fields(data, now=time.time())
    except FieldError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{exc.param.replace('_', '-')}") from None


def _describe(key: Any, now: float) -> str:
    """One line: ``ci  cgw-AbCd1234  active  owner ada  rpm 60 …`` (never the secret)."""
    parts = [f"{key.name:<20} {key.prefix}  {key.status(now):<7}"]
    if key.owner:
        parts.append(f"owner {key.owner}")
    if key.admin:
        parts.append("admin")
    for label, value in (
        ("rpm", key.rpm),
        ("tpm", key.tpm),
        ("tokens/day", key.tokens_per_day),
        ("streams", key.max_streams),
    ):
        if value is not None:
            parts.append(f"{label} {value}")
    if key.accounts is not None:
        parts.append(f"accounts {','.join(key.accounts)}")
    if key.models is not None:
        parts.append(f"models {','.join(sorted(key.models))}")
    if key.max_effort:
        parts.append(f"max-effort {key.max_effort}")
    if key.reasoning_mode:
        parts.append(f"reasoning {key.reasoning_mode}")
    if key.expires_at is not None and key.status(now) == "active":
        parts.append(f"expires in {format_duration(key.expires_at - now)}")
    parts.append(f"used {format_since(key.last_used_at, now)}")
    return "  ".join(parts)


def _refused(exc: Exception) -> CliError:
    return CliError(str(exc))


@click.group()
def keys() -> None:
    """Manage API keys: who may call the gateway, on which accounts and models, how much."""


@keys.command("create")
@click.argument("name")
@_policy_options
@click.pass_context
def keys_create(ctx: click.Context, name: str, **options: Any) -> None:
    """Create key NAME and print its secret (once)."""
    from codexgw.store import StoreError
    from codexgw.store.audit import Audit
    from codexgw.store.keys import create_key, new_secret

    fields = _fields(options, name=name)
    secret = new_secret()
    store = open_store(ctx.obj["store_dir"], create=True)
    audit = Audit(actor(), "key.create", name, {"prefix": secret[:12]})
    try:
        key = create_key(store, fields, secret, now=time.time(), audit=audit)
    except StoreError as exc:
        raise _refused(exc) from None
    click.echo(f"created key {key.name} ({key.prefix}); the secret is shown only now:")
    click.echo(secret)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (never a secret).")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List keys: prefix, status, owner, policy, last use."""
    from codexgw.store.keys import list_keys

    now = time.time()
    rows = list_keys(open_store(ctx.obj["store_dir"]))
    if as_json:
        click.echo(json.dumps([k.public(now) for k in rows], indent=2))
        return
    if not rows:
        click.echo("no keys; create one with: codexgw keys create NAME")
        return
    for key in rows:
        click.echo(_describe(key, now))


@keys.command("set")
@click.argument("name")
@click.option("--name", "new_name", help="Rename the key (its usage history follows).")
@_policy_options
@click.pass_context
def keys_set(ctx: click.Context, name: str, new_name: str | None, **options: Any) -> None:
    """Change key NAME's policy (options not given stay as they are)."""
    from codexgw.store import StoreError
    from codexgw.store.audit import Audit
    from codexgw.store.keys import update_key

    fields = _fields(options, name=new_name)
    if not fields:
        raise click.UsageError("nothing to change; give at least one option")
    store = open_store(ctx.obj["store_dir"])
    detail = {k: v for k, v in fields.items() if k != "name"} | ({"name": new_name} if new_name else {})
    try:
        key = update_key(
            store, name, fields, now=time.time(), audit=Audit(actor(), "key.update", name, detail)
        )
    except StoreError as exc:
        raise _refused(exc) from None
    if key is None:
        raise CliError(f"no key named '{name}'")
    click.echo(_describe(key, time.time()))


@keys.command("revoke")
@click.argument("name")
@click.pass_context
def keys_revoke(ctx: click.Context, name: str) -> None:
    """Revoke key NAME at once (kept for its usage history)."""
    from codexgw.store.audit import Audit
    from codexgw.store.keys import revoke_key

    key = revoke_key(
        open_store(ctx.obj["store_dir"]), name, now=time.time(), audit=Audit(actor(), "key.revoke", name)
    )
    if key is None:
        raise CliError(f"no key named '{name}'")
    click.echo(f"revoked {key.name} ({key.prefix})")


@keys.command("rotate")
@click.argument("name")
@click.option(
    "--grace", type=duration_type, default="0", show_default=True, help="How long the old secret still works."
)
@click.pass_context
def keys_rotate(ctx: click.Context, name: str, grace: float) -> None:
    """Give key NAME a new secret (printed once); the old one works for --grace more."""
    from codexgw.store.audit import Audit
    from codexgw.store.keys import get_key, new_secret, rotate_key

    store = open_store(ctx.obj["store_dir"])
    current = get_key(store, name)
    if current is None:
        raise CliError(f"no key named '{name}'")
    if current.revoked_at is not None:
        raise CliError(f"key '{name}' is revoked; create a new one")
    secret = new_secret()
    audit = Audit(actor(), "key.rotate", name, {"prefix": secret[:12], "grace_s": grace})
    key = rotate_key(store, name, secret, grace_s=grace, now=time.time(), audit=audit)
    if key is None:
        raise CliError(f"no key named '{name}'")
    grace_text = f"; the old secret works for {format_duration(grace)} more" if grace else ""
    click.echo(f"rotated {key.name} ({key.prefix}){grace_text}; the new secret is shown only now:")
    click.echo(secret)


@keys.command("usage")
@click.argument("name", required=False)
@click.option(
    "--since", type=duration_type, default="7d", show_default=True, help="How far back (1h, 7d, 30d)."
)
@click.option(
    "--by", type=click.Choice(["day", "hour", "model", "account", "key"]), default="day", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's usage object.")
@click.pass_context
def keys_usage(ctx: click.Context, name: str | None, since: float, by: str, as_json: bool) -> None:
    """Requests, errors and tokens of key NAME (all keys by default), from the store (a running
    server writes its counters every few seconds)."""
    from codexgw.store.keys import get_key
    from codexgw.store.usage import read_usage

    store = open_store(ctx.obj["store_dir"])
    if name is not None and get_key(store, name) is None:
        raise CliError(f"no key named '{name}'")
    start = time.time() - since
    rows = read_usage(store, since=start, by=by, key=name)
    if as_json:
        click.echo(json.dumps({"since": start, "by": by, "data": rows}, indent=2))
        return
    if not rows:
        click.echo("no usage in that time")
        return
    click.echo(
        f"{by:<20} {'requests':>9} {'errors':>7} {'input':>10} {'cached':>10} {'output':>10} {'reasoning':>10}"
    )
    for row in rows:
        bucket = row["bucket"]
        if by in ("day", "hour"):
            bucket = time.strftime("%Y-%m-%d" if by == "day" else "%Y-%m-%d %H:00", time.gmtime(bucket))
        click.echo(
            f"{bucket!s:<20} {row['requests']:>9} {row['errors']:>7} {row['input_tokens']:>10} "
            f"{row['cached_tokens']:>10} {row['output_tokens']:>10} {row['reasoning_tokens']:>10}"
        )
