"""Click options shared by several commands (one definition each, so defaults and help agree).

:func:`serve_options` turns :data:`codexgw.cli.settings.SERVE_OPTIONS` into the flags of `serve` (and
of the commands that pass serve options on: `service install`, `setup`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from codexgw.cli.settings import SERVE_OPTIONS, Option
from codexgw.config import DEFAULT_AUTH_URL, DEFAULT_UPSTREAM

F = TypeVar("F", bound=Callable[..., Any])


def upstream_option(fn: F) -> F:
    """``--upstream URL`` (env ``CODEXGW_UPSTREAM``): the Codex backend base (codex-protocol.md §6.1)."""
    return click.option(
        "--upstream",
        envvar="CODEXGW_UPSTREAM",
        default=DEFAULT_UPSTREAM,
        show_default=True,
        help="Codex backend base URL. Env: CODEXGW_UPSTREAM.",
    )(fn)


def auth_url_option(fn: F) -> F:
    """``--auth-url URL`` (env ``CODEXGW_AUTH_URL``): the OAuth issuer (codex-protocol.md §1)."""
    return click.option(
        "--auth-url",
        envvar="CODEXGW_AUTH_URL",
        default=DEFAULT_AUTH_URL,
        show_default=True,
        help="OAuth issuer URL. Env: CODEXGW_AUTH_URL.",
    )(fn)


def _click_type(option: Option) -> Any:
    if option.choices is not None:
        return click.Choice(option.choices)
    if option.kind is int:
        return click.IntRange(option.low, option.high)  # type: ignore[arg-type]
    if option.kind is float:
        return click.FloatRange(option.low, option.high)
    if option.path:
        return click.Path(exists=True, dir_okay=False)
    return str


def _help(option: Option) -> str:
    default = "" if option.default in (None, ()) else f" [default: {option.default}]"
    return f"{option.help} Env: {option.env}.{default}"


def serve_options(fn: F) -> F:
    """Add every :data:`SERVE_OPTIONS` entry as a click option (default ``None``: not given), so
    the command can tell a flag from the environment, the file and the default."""
    for option in reversed(SERVE_OPTIONS):
        if option.kind is bool:  # --dashboard/--no-dashboard
            no_flag = "--no-" + option.flag[2:]
            fn = click.option(f"{option.flag}/{no_flag}", option.name, default=None, help=_help(option))(fn)
            continue
        if option.kind is list:  # repeatable: --server-name a --server-name b
            fn = click.option(option.flag, option.name, multiple=True, help=_help(option))(fn)
            continue
        fn = click.option(
            option.flag, option.name, type=_click_type(option), default=None, help=_help(option)
        )(fn)
    return fn


def flags_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """The serve flags a command received (``{"port": 9000, …}``) as dotted keys for :func:`resolve`."""
    flags = {f"serve.{o.name}": params.get(o.name) for o in SERVE_OPTIONS}
    for option in SERVE_OPTIONS:  # a repeatable flag never given is () from click: not given
        if option.kind is list:
            flags[option.key] = list(flags[option.key] or ()) or None
    return flags
