"""The flows behind ``accounts refresh|remove|export``, and what every flow shares.

A flow starts its own ``trio.run`` (:func:`run_trio`), prints progress with :func:`say` (never a
token) and raises :class:`~codexgw.auth.login.LoginError` with a one-line message on failure;
:func:`call_flow` turns that into ``error: …`` and exit status 1 (Ctrl-C: exit status 130). Flows:
``accounts refresh`` (codex-protocol.md §3), ``accounts remove`` (revoke, §3) and ``accounts
export`` (§5); the login flows live in :mod:`codexgw.cli.login`.

Top-level imports stay light (click, the cores): trio, httpx and :mod:`codexgw.auth` load in the flows.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from codexgw.cli.common import (
    CliError,
    Interrupted,
    cli_name,
    default_codex_home,
    format_validity,
    open_store,
)
from codexgw.oauth.tokens import RefreshError, build_revoke_request
from codexgw.pool.health import AccountStatus, spent_refresh_status

__all__ = ["HTTP_TIMEOUT", "call_flow", "run_export", "run_refresh", "run_remove", "run_trio", "say"]

HTTP_TIMEOUT = (10.0, 30.0, 30.0, 30.0)
"""httpx's (connect, read, write, pool) timeouts for the OAuth server, s (a tuple: no httpx import)."""


def say(line: str) -> None:
    """Print one progress line for the user (never a token)."""
    click.echo(line)


def call_flow(flow: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Run ``flow(*args, **kwargs)``; its :class:`~codexgw.auth.login.LoginError` becomes a
    :class:`CliError` with the same line."""
    from codexgw.auth.login import LoginError

    try:
        flow(*args, **kwargs)
    except LoginError as e:
        raise CliError(str(e)) from None


def run_trio(fn: Callable[[], Awaitable[Any]]) -> Any:
    """``trio.run(fn)``; a :class:`LoginError` is unwrapped from trio's exception groups, and Ctrl-C
    becomes :class:`~codexgw.cli.common.Interrupted` (exit status 130)."""
    import trio

    from codexgw.auth.login import LoginError

    try:
        return trio.run(fn)
    except KeyboardInterrupt:
        raise Interrupted() from None
    except BaseExceptionGroup as group:
        for kind in (LoginError, KeyboardInterrupt):
            found = group.subgroup(kind)
            while isinstance(found, BaseExceptionGroup):
                found = found.exceptions[0]
            if isinstance(found, LoginError):
                raise found from None
            if found is not None:
                raise Interrupted() from None
        raise


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
            say(f"{n}: skipped (needs a new login: {cli_name()} login pkce --name {n} --relogin)")
        if not targets and not skipped:
            say("no accounts to refresh")

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
                        status = spent_refresh_status(
                            exc.code, access_expires_at=account.access_expires_at, now=time.time()
                        )
                        reason = exc.status_reason
                        if status is AccountStatus.LOGIN_EXPIRING:
                            reason = (
                                f"{reason}; serving on its access token "
                                f"({format_validity(account.access_expires_at, time.time())}), then it "
                                f"needs {cli_name()} login pkce --name {account.name} --relogin"
                            )
                        store.set_status(account.id, status, reason)
                    click.echo(f"{account.name}: refresh failed: {exc}", err=True)
                    continue
                how = (
                    "refreshed" if refresher.refresh_calls > calls else "already refreshed by another process"
                )
                say(
                    f"{updated.name}: {how} (access token {format_validity(updated.access_expires_at, time.time())})"
                )
        return failures

    failures = run_trio(main)
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
        say(f"not revoking: the login is shared with {account.linked_path}")
    elif revoke:

        async def main() -> str:
            spec = build_revoke_request(auth_url, refresh_token=account.refresh_token)
            async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
                try:
                    response = await send(http, spec, what="revoke")
                except LoginError as e:
                    return str(e)
            return "" if response.is_success else f"revoke answered HTTP {response.status_code}"

        problem = run_trio(main)
        say(
            "revoked the login's refresh token"
            if not problem
            else f"could not revoke ({problem}); removing anyway"
        )
    if not store.remove_account(name):
        raise LoginError(f"no account named '{name}'")
    say(f"removed {name}")


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
    say(f"exported {name} to {path}")
    resolved = str(path.resolve())
    if link:
        store.set_linked_path(account.id, resolved)
        say(f"linked {name} to {path}: refreshes are shared with the Codex CLI")
    elif account.linked_path != resolved:
        click.echo(
            "note: Codex and codexgw now hold the same single-use refresh token; whichever refreshes "
            "first signs the other out. Use --link to share it safely.",
            err=True,
        )
