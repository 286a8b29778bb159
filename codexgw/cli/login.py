"""``codexgw login pkce|device`` and the flows that talk to the OAuth server or the Codex files.

Each ``run_*`` flow starts its own ``trio.run``, prints progress with ``click.echo`` (never a token)
and raises :class:`~codexgw.auth.login.LoginError` with a one-line message on failure;
:func:`call_flow` turns that into ``error: …`` and exit status 1. Flows: ``login pkce`` (§1),
``login device`` (§2), ``accounts refresh`` (§3), ``accounts remove`` (revoke, §3) and
``accounts export`` (§5); the ``accounts`` commands live in :mod:`codexgw.cli.accounts`.

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
    default_codex_home,
    describe_account,
    format_countdown,
    format_validity,
    open_store,
)
from codexgw.cli.options import auth_url_option
from codexgw.cli.users import check_owner, give_account
from codexgw.oauth.tokens import RefreshError, build_revoke_request
from codexgw.pool.health import AccountStatus

if TYPE_CHECKING:
    from codexgw.auth.login import LoginResult

__all__ = [
    "call_flow",
    "login",
    "run_device",
    "run_export",
    "run_pkce",
    "run_refresh",
    "run_remove",
]

HTTP_TIMEOUT = (10.0, 30.0, 30.0, 30.0)
"""httpx's (connect, read, write, pool) timeouts for the OAuth server, s (a tuple: no httpx import)."""


def _say(line: str) -> None:
    click.echo(line)


def call_flow(flow: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Run ``flow(*args, **kwargs)``; its :class:`~codexgw.auth.login.LoginError` becomes a
    :class:`CliError` with the same line."""
    from codexgw.auth.login import LoginError

    try:
        flow(*args, **kwargs)
    except LoginError as e:
        raise CliError(str(e)) from None


def _run(fn: Callable[[], Awaitable[Any]]) -> Any:
    """``trio.run(fn)``; a :class:`LoginError` or Ctrl-C is unwrapped from trio's exception groups."""
    import trio

    from codexgw.auth.login import LoginError

    try:
        return trio.run(fn)
    except KeyboardInterrupt:
        raise LoginError("interrupted") from None
    except BaseExceptionGroup as group:
        for kind in (LoginError, KeyboardInterrupt):
            found = group.subgroup(kind)
            while isinstance(found, BaseExceptionGroup):
                found = found.exceptions[0]
            if isinstance(found, LoginError):
                raise found from None
            if found is not None:
                raise LoginError("interrupted") from None
        raise


def _report(result: LoginResult) -> None:
    verb = "added" if result.created else "updated"
    _say(f"logged in: {verb} account {result.account.name} ({describe_account(result.account)})")
    if result.api_key_stored:
        _say("the API key from the token exchange was stored too")


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
    owner: str | None = None,
) -> None:
    """``codexgw login pkce`` (codex-protocol.md §1); ``owner``: the user who will own the account."""
    import httpx

    from codexgw.auth.login import pkce_login

    check_owner(store_dir, owner)
    store = open_store(store_dir)

    async def main() -> LoginResult:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            return await pkce_login(
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

    result = _run(main)
    _report(result)
    give_account(store_dir, result.account.name, owner, say=_say)


def run_device(
    store_dir: Path, *, auth_url: str, name: str | None, min_interval_s: float, owner: str | None = None
) -> None:
    """``codexgw login device`` (codex-protocol.md §2), with a live countdown on a terminal;
    ``owner``: the user who will own the account."""
    import httpx
    import trio

    from codexgw.auth.device import DevicePrompt, device_login
    from codexgw.auth.login import finish_login

    check_owner(store_dir, owner)
    store = open_store(store_dir)

    async def main() -> LoginResult:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            async with trio.open_nursery() as nursery:

                def on_prompt(prompt: DevicePrompt) -> None:
                    _say("On any device with a browser, open:")
                    _say(f"  {prompt.verification_url}")
                    _say(f"and enter the code:  {prompt.user_code}")
                    _say("(the code expires in 15 minutes; this command waits for you to approve it)")
                    nursery.start_soon(_countdown, prompt.expires_at)

                tokens = await device_login(
                    http, auth_url=auth_url, on_prompt=on_prompt, min_interval_s=min_interval_s
                )
                nursery.cancel_scope.cancel()  # stops the countdown
            return await finish_login(http, store, tokens, auth_url=auth_url, name=name)

    result = _run(main)
    _report(result)
    give_account(store_dir, result.account.name, owner, say=_say)


async def _countdown(expires_at: float) -> None:
    """A one-line ``expires in MM:SS`` on a terminal, updated every second (rich)."""
    import trio
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console()
    if not console.is_terminal:
        return
    with Live(console=console, transient=True, auto_refresh=False) as live:
        while True:
            left = format_countdown(expires_at - time.time())
            live.update(Text(f"Waiting for approval… code expires in {left}"), refresh=True)
            await trio.sleep(1)


def run_refresh(store_dir: Path, *, auth_url: str, name: str | None) -> None:
    """``codexgw accounts refresh [NAME]``: force a refresh through the same :class:`Refresher` the
    server uses, so the store lease keeps it single-flight with a running server (§3).

    Raises:
        LoginError: no such account, or at least one refresh failed (after trying all).
    """
    import httpx

    from codexgw.auth.login import LoginError
    from codexgw.auth.refresh import NeedsLogin, Refresher

    store = open_store(store_dir)
    if name is not None:
        account = store.get_account(name)
        if account is None:
            raise LoginError(f"no account named '{name}'")
        targets = [account]
    else:
        targets = [a for a in store.list_accounts() if a.status != AccountStatus.NEEDS_LOGIN]
        skipped = [a.name for a in store.list_accounts() if a.status == AccountStatus.NEEDS_LOGIN]
        for n in skipped:
            _say(f"{n}: skipped (needs a new login: codexgw login pkce --name {n})")
        if not targets and not skipped:
            _say("no accounts to refresh")

    async def main() -> int:
        failures = 0
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            refresher = Refresher(store, http, auth_url=auth_url)
            for account in targets:
                calls = refresher.refresh_calls
                try:
                    updated = await refresher.refresh(account, stale_access_token=account.access_token)
                except (RefreshError, TimeoutError) as exc:
                    failures += 1
                    if isinstance(exc, NeedsLogin):  # the refresher writes no status: we record it
                        store.set_status(account.id, AccountStatus.NEEDS_LOGIN, exc.status_reason)
                    click.echo(f"{account.name}: refresh failed: {exc}", err=True)
                    continue
                how = (
                    "refreshed" if refresher.refresh_calls > calls else "already refreshed by another process"
                )
                _say(
                    f"{updated.name}: {how} (access token {format_validity(updated.access_expires_at, time.time())})"
                )
        return failures

    failures = _run(main)
    if failures:
        raise LoginError(f"{failures} of {len(targets)} refreshes failed")


def run_remove(store_dir: Path, *, auth_url: str, name: str, revoke: bool) -> None:
    """``codexgw accounts remove NAME``: best-effort revoke of the refresh token (§3), then delete.

    A linked account is not revoked (that would sign the Codex CLI sharing it out too).
    """
    import httpx

    from codexgw.auth.login import LoginError, send

    store = open_store(store_dir)
    account = store.get_account(name)
    if account is None:
        raise LoginError(f"no account named '{name}'")
    if revoke and account.linked_path:
        _say(f"not revoking: the login is shared with {account.linked_path}")
    elif revoke:

        async def main() -> str:
            spec = build_revoke_request(auth_url, refresh_token=account.refresh_token)
            async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
                try:
                    response = await send(http, spec, what="revoke")
                except LoginError as e:
                    return str(e)
            return "" if response.is_success else f"revoke answered HTTP {response.status_code}"

        problem = _run(main)
        _say(
            "revoked the login's refresh token"
            if not problem
            else f"could not revoke ({problem}); removing anyway"
        )
    if not store.remove_account(name):
        raise LoginError(f"no account named '{name}'")
    _say(f"removed {name}")


def run_export(store_dir: Path, *, name: str, target: Path | None, force: bool, link: bool) -> None:
    """``codexgw accounts export NAME``: write a Codex CLI auth.json (§5), 0600, atomically.

    Refuses, without ``force``, to replace a file holding another account, an unreadable file, or a
    newer rotation of this login. ``link`` ties the account to the written file.
    """
    from codexgw.auth import linked
    from codexgw.auth.login import LoginError
    from codexgw.store.importers import ImportFailed, load_codex_auth_json

    store = open_store(store_dir)
    account = store.get_account(name)
    if account is None:
        raise LoginError(f"no account named '{name}'")
    path = (target or default_codex_home() / "auth.json").expanduser()
    if path.exists() and not force:
        try:
            existing = load_codex_auth_json(path)
        except ImportFailed:
            existing = None
        if (
            existing is None
            or linked.file_account_id(existing) != account.chatgpt_account_id
            or linked.file_is_newer(existing, account)
        ):
            raise LoginError(f"{path} already holds another or a newer login; pass --force to overwrite it")
    try:
        linked.write_auth_json(path, account, now=time.time())
    except linked.LinkedFileError as e:
        raise LoginError(str(e)) from None
    _say(f"exported {name} to {path}")
    resolved = str(path.resolve())
    if link:
        store.set_linked_path(account.id, resolved)
        _say(f"linked {name} to {path}: refreshes are shared with the Codex CLI")
    elif account.linked_path != resolved:
        click.echo(
            "note: Codex and codexgw now hold the same single-use refresh token; whichever refreshes "
            "first signs the other out. Use --link to share it safely.",
            err=True,
        )


# -- commands --------------------------------------------------------------------------------------


@click.group()
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
@click.option("--owner", metavar="USER", help="The user who owns the account (their keys reach it).")
@auth_url_option
@click.pass_context
def login_pkce(
    ctx: click.Context,
    name: str | None,
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
        owner=owner,
    )


@login.command("device")
@click.option("--name", help="Account name (default: the email's local part).")
@click.option("--min-poll-interval", default=1.0, hidden=True, type=click.FloatRange(0))
@click.option("--owner", metavar="USER", help="The user who owns the account (their keys reach it).")
@auth_url_option
@click.pass_context
def login_device(
    ctx: click.Context, name: str | None, min_poll_interval: float, owner: str | None, auth_url: str
) -> None:
    """Sign in with a device code (for headless machines: approve on any other device)."""
    call_flow(
        run_device,
        ctx.obj["store_dir"],
        auth_url=auth_url,
        name=name,
        min_interval_s=min_poll_interval,
        owner=owner,
    )
