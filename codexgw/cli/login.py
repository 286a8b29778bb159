"""``codexgw login pkce|device``: the commands and the sign-in flows behind them.

Each ``run_*`` flow starts its own ``trio.run`` (:func:`codexgw.cli.flows.run_trio`), prints progress
with ``click.echo`` (never a token) and raises :class:`~codexgw.auth.login.LoginError` with a
one-line message on failure, which :func:`~codexgw.cli.flows.call_flow` turns into ``error: …``.
Flows: ``login pkce`` (codex-protocol.md §1) and ``login device`` (§2), each with a countdown on a
terminal; a ``--name`` already in use is refused before the sign-in starts (:func:`check_name`).

Top-level imports stay light (click, the cores): trio, httpx and :mod:`codexgw.auth` load in the flows.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from codexgw.cli.common import (
    CliError,
    cli_name,
    describe_account,
    format_countdown,
    open_store,
)
from codexgw.cli.flows import HTTP_TIMEOUT, call_flow
from codexgw.cli.flows import run_trio as _run
from codexgw.cli.flows import say as _say
from codexgw.cli.options import auth_url_option
from codexgw.cli.users import check_owner, give_account

if TYPE_CHECKING:
    from codexgw.auth.login import LoginResult
    from codexgw.store import Store

__all__ = ["check_name", "login", "run_device", "run_pkce"]


def _report(result: LoginResult) -> None:
    verb = "added" if result.created else "updated"
    renamed = f"; renamed from {result.renamed_from}" if result.renamed_from else ""
    _say(f"logged in: {verb} account {result.account.name} ({describe_account(result.account)}{renamed})")
    if result.api_key_stored:
        _say("the API key from the token exchange was stored too")


def check_name(store: Store, name: str | None, *, relogin: bool, how: str) -> None:
    """Refuse a ``--name`` already in use before the sign-in starts, unless ``relogin`` (then the
    sign-in goes ahead, and is refused at its end only if it is another ChatGPT account).

    Raises:
        CliError: the name is taken and not ``relogin``; ``relogin`` without a name.
    """
    if name is None:
        if relogin:
            raise click.UsageError("--relogin needs --name NAME: the account to sign in again")
        return
    holder = store.get_account(name)
    if holder is not None and not relogin:
        raise CliError(
            f"name '{name}' is already used by account {name} ({describe_account(holder)}); "
            f"`{cli_name()} login {how} --name {name} --relogin` renews that account's login, "
            "or pick another --name"
        )
    if holder is None and relogin:
        _say(f"note: no account named '{name}' yet; this login adds it")


def stdin_reader() -> Callable[[], Awaitable[str | None]] | None:
    """A line reader on fd 0 for the paste-URL fallback, or ``None`` when stdin is not a terminal or
    a pipe. Reads with ``os.read`` in an abandonable worker thread (no Python buffer lock is held,
    so exiting while it waits is safe)."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, ValueError, OSError):
        return None
    if not (os.isatty(fd) or stat.S_ISFIFO(mode)):
        return None
    import trio

    buf = bytearray()

    async def read_line() -> str | None:
        while b"\n" not in buf:
            chunk = await trio.to_thread.run_sync(os.read, fd, 4096, abandon_on_cancel=True)
            if not chunk:
                if not buf:
                    return None
                line = bytes(buf)
                buf.clear()
                return line.decode("utf-8", "replace")
            buf.extend(chunk)
        line, _, rest = bytes(buf).partition(b"\n")
        buf[:] = rest
        return line.decode("utf-8", "replace")

    return read_line


def run_pkce(
    store_dir: Path,
    *,
    auth_url: str,
    name: str | None,
    port: int,
    timeout_s: float,
    open_browser: bool,
    api_key_exchange: bool,
    relogin: bool = False,
    owner: str | None = None,
) -> None:
    """``codexgw login pkce`` (codex-protocol.md §1), with a live countdown on a terminal;
    ``owner``: the user who will own the account."""
    import httpx
    import trio

    from codexgw.auth.login import pkce_login

    check_owner(store_dir, owner)
    store = open_store(store_dir, create=True)
    check_name(store, name, relogin=relogin, how="pkce")

    async def main() -> LoginResult:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            async with trio.open_nursery() as nursery:
                deadline = time.time() + timeout_s
                nursery.start_soon(_countdown, deadline, "Waiting for the sign-in… {left} left")
                result = await pkce_login(
                    http,
                    store,
                    auth_url=auth_url,
                    name=name,
                    say=_say,
                    port=port,
                    timeout_s=timeout_s,
                    open_browser=open_browser,
                    read_paste=stdin_reader(),
                    api_key_exchange=api_key_exchange,
                )
                nursery.cancel_scope.cancel()  # stops the countdown
            return result

    result = _run(main)
    _report(result)
    give_account(store_dir, result.account.name, owner, say=_say)


def run_device(
    store_dir: Path,
    *,
    auth_url: str,
    name: str | None,
    min_interval_s: float,
    relogin: bool = False,
    owner: str | None = None,
) -> None:
    """``codexgw login device`` (codex-protocol.md §2), with a live countdown on a terminal;
    ``owner``: the user who will own the account."""
    import httpx
    import trio

    from codexgw.auth.device import DevicePrompt, device_login
    from codexgw.auth.login import finish_login

    check_owner(store_dir, owner)
    store = open_store(store_dir, create=True)
    check_name(store, name, relogin=relogin, how="device")

    async def main() -> LoginResult:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            async with trio.open_nursery() as nursery:

                def on_prompt(prompt: DevicePrompt) -> None:
                    _say("On any device with a browser, open:")
                    _say(f"  {prompt.verification_url}")
                    _say(f"and enter the code:  {prompt.user_code}")
                    _say("(the code expires in 15 minutes; this command waits for you to approve it)")
                    nursery.start_soon(
                        _countdown, prompt.expires_at, "Waiting for approval… code expires in {left}"
                    )

                tokens = await device_login(
                    http, auth_url=auth_url, on_prompt=on_prompt, min_interval_s=min_interval_s
                )
                nursery.cancel_scope.cancel()  # stops the countdown
            return await finish_login(http, store, tokens, auth_url=auth_url, name=name)

    result = _run(main)
    _report(result)
    give_account(store_dir, result.account.name, owner, say=_say)


async def _countdown(expires_at: float, text: str, *, console: Any = None) -> None:
    """A one-line countdown (``text`` with ``{left}`` as ``MM:SS``) on a terminal, updated every
    second (rich); nothing when the output is no terminal."""
    import trio
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = console if console is not None else Console()
    if not console.is_terminal:
        return
    with Live(console=console, transient=True, auto_refresh=False) as live:
        while True:
            left = format_countdown(expires_at - time.time())
            live.update(Text(text.format(left=left)), refresh=True)
            await trio.sleep(1)


# -- commands --------------------------------------------------------------------------------------


@click.group()
def login() -> None:
    """Add a ChatGPT account by signing in (browser or device code)."""


RELOGIN_HELP = "Sign account NAME in again (renews its login); refused if you sign in as another account."


@login.command("pkce")
@click.option("--name", help="Account name (default: the email's local part).")
@click.option("--relogin", is_flag=True, help=RELOGIN_HELP)
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
@click.option("--owner", metavar="USER", help="The user who owns the account (their keys reach it).")
@auth_url_option
@click.pass_context
def login_pkce(
    ctx: click.Context,
    name: str | None,
    relogin: bool,
    no_browser: bool,
    timeout: int,
    port: int,
    api_key_exchange: bool,
    owner: str | None,
    auth_url: str,
) -> None:
    """Sign in with a browser (OAuth + PKCE, as `codex login` does).

    Over SSH: forward the port (ssh -L 1455:127.0.0.1:1455 host) or paste the final URL here.
    """
    call_flow(
        run_pkce,
        ctx.obj["store_dir"],
        auth_url=auth_url,
        name=name,
        port=port,
        timeout_s=float(timeout),
        open_browser=not no_browser,
        api_key_exchange=api_key_exchange,
        relogin=relogin,
        owner=owner,
    )


@login.command("device")
@click.option("--name", help="Account name (default: the email's local part).")
@click.option("--relogin", is_flag=True, help=RELOGIN_HELP)
@click.option("--min-poll-interval", default=1.0, hidden=True, type=click.FloatRange(0))
@click.option("--owner", metavar="USER", help="The user who owns the account (their keys reach it).")
@auth_url_option
@click.pass_context
def login_device(
    ctx: click.Context,
    name: str | None,
    relogin: bool,
    min_poll_interval: float,
    owner: str | None,
    auth_url: str,
) -> None:
    """Sign in with a device code (for headless machines: approve on any other device)."""
    call_flow(
        run_device,
        ctx.obj["store_dir"],
        auth_url=auth_url,
        name=name,
        min_interval_s=min_poll_interval,
        relogin=relogin,
        owner=owner,
    )
