"""Click options shared by several commands (one definition each, so defaults and help agree)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

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
