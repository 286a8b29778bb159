"""The bodies of the CLI commands that talk to the OAuth server (``cli.py`` holds only the click wiring).

Each ``run_*`` function starts its own ``trio.run``, prints progress with ``click.echo`` (never a
token) and raises :class:`LoginError` with a one-line message on failure; ``cli.py`` turns that into
``error: …`` and exit status 1. Commands: ``login pkce`` (§1), ``login device`` (§2),
``accounts refresh`` (§3) and ``accounts remove`` (revoke, §3).
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
import httpx
import trio

from codexgw.auth.login import LoginError, LoginResult, pkce_login, send
from codexgw.oauth.tokens import RefreshError, build_revoke_request
from codexgw.pool.health import AccountStatus
from codexgw.store import Account, Store, StoreError

__all__ = ["default_codex_auth", "run_device", "run_export", "run_pkce", "run_refresh", "run_remove"]

HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def _say(line: str) -> None:
    click.echo(line)


def _open(store_dir: Path) -> Store:
    try:
        return Store.open(store_dir)
    except StoreError as e:
        raise LoginError(str(e)) from None


def _run(fn: Callable[[], Awaitable[Any]]) -> Any:
    """``trio.run(fn)``; a :class:`LoginError` or Ctrl-C is unwrapped from trio's exception groups."""
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


def _describe(account: Account) -> str:
    return ", ".join(x for x in (account.email, account.plan_type) if x) or account.chatgpt_account_id


def _report(result: LoginResult) -> None:
    verb = "added" if result.created else "updated"
    _say(f"logged in: {verb} account {result.account.name} ({_describe(result.account)})")
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
) -> None:
    """``codexgw login pkce`` (codex-protocol.md §1)."""
    store = _open(store_dir)

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

    _report(_run(main))


def run_device(store_dir: Path, *, auth_url: str, name: str | None, min_interval_s: float) -> None:
    """``codexgw login device`` (codex-protocol.md §2), with a live countdown on a terminal."""
    from codexgw.auth.device import DevicePrompt, device_login
    from codexgw.auth.login import finish_login

    store = _open(store_dir)

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

    _report(_run(main))


async def _countdown(expires_at: float) -> None:
    """A one-line ``expires in MM:SS`` on a terminal, updated every second (rich)."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console()
    if not console.is_terminal:
        return
    with Live(console=console, transient=True, auto_refresh=False) as live:
        while True:
            left = max(0, int(expires_at - time.time()))
            live.update(
                Text(f"Waiting for approval… code expires in {left // 60:02d}:{left % 60:02d}"), refresh=True
            )
            await trio.sleep(1)


def run_refresh(store_dir: Path, *, auth_url: str, name: str | None) -> None:
    """``codexgw accounts refresh [NAME]``: force a refresh through the same :class:`Refresher` the
    server uses, so the store lease keeps it single-flight with a running server (§3).

    Raises:
        LoginError: no such account, or at least one refresh failed (after trying all).
    """
    from codexgw.auth.refresh import NeedsLogin, Refresher

    store = _open(store_dir)
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
                _say(f"{updated.name}: {how} (access token {_expiry(updated)})")
        return failures

    failures = _run(main)
    if failures:
        raise LoginError(f"{failures} of {len(targets)} refreshes failed")


def _expiry(account: Account) -> str:
    exp = account.access_expires_at
    if exp is None:
        return "expiry unknown"
    left = exp - time.time()
    return f"valid for {int(left // 60)}m" if left > 0 else "expired"


def run_remove(store_dir: Path, *, auth_url: str, name: str, revoke: bool) -> None:
    """``codexgw accounts remove NAME``: best-effort revoke of the refresh token (§3), then delete.

    A linked account is not revoked (that would sign the Codex CLI sharing it out too).
    """
    store = _open(store_dir)
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


def default_codex_auth() -> Path:
    """``$CODEX_HOME/auth.json``, else ``~/.codex/auth.json`` (codex-protocol.md §5)."""
    home = os.environ.get("CODEX_HOME")
    return (Path(home) if home else Path.home() / ".codex") / "auth.json"


def run_export(store_dir: Path, *, name: str, target: Path | None, force: bool, link: bool) -> None:
    """``codexgw accounts export NAME``: write a Codex CLI auth.json (§5), 0600, atomically.

    Refuses, without ``force``, to replace a file holding another account, an unreadable file, or a
    newer rotation of this login. ``link`` ties the account to the written file.
    """
    from codexgw.auth import linked
    from codexgw.store.importers import ImportFailed, load_codex_auth_json

    store = _open(store_dir)
    account = store.get_account(name)
    if account is None:
        raise LoginError(f"no account named '{name}'")
    path = (target or default_codex_auth()).expanduser()
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
