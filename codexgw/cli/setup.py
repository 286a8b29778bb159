"""``codexgw setup``: from a copied file to a running service, in one guided (or scripted) command.

Steps, each skipped when already done (so running it again changes only what is missing):

1. **An account.** None in the store yet: adopt the Codex CLI's ``auth.json`` (``link``: shared
   with Codex, refreshes written back; ``copy``: imported), or log in (``device`` on a headless
   machine, ``pkce`` where a browser can open). ``--login`` chooses; ``--yes`` takes the default:
   link an existing ``auth.json``, else device or pkce.
2. **A key**, when the gateway listens beyond loopback and has none: a random one is written to
   the config file's ``[serve]`` table (the file is created 0600 if missing).
3. **The Codex CLI** pointed at the gateway (``configure codex``), unless ``--no-configure-codex``.
4. **The service** installed and started (``service install``); ``--service-dry-run`` prints the
   unit instead (machines without systemd), and so does a machine where systemd is not running.
5. **Wait for ``/health``**, then print the base URL, the key to use and ``status``.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import click

from codexgw.cli.common import CliError, default_codex_home, open_store
from codexgw.cli.options import flags_of, serve_options

__all__ = ["setup"]

LOGIN_CHOICES = ("link", "copy", "device", "pkce", "skip")


def _step(text: str) -> None:
    click.echo(click.style("==> ", bold=True) + text)


def choose_login(choice: str | None, *, has_codex_auth: bool, browser: bool, interactive: bool) -> str:
    """Which way to get the first account: the user's ``choice``, a prompt, or the default (link an
    existing Codex login, else device code on a headless machine, else the browser)."""
    default = "link" if has_codex_auth else ("pkce" if browser else "device")
    if choice is not None:
        return choice
    if not interactive:
        return default
    options = [*(("link", "copy") if has_codex_auth else ()), "device", "pkce"]
    return str(
        click.prompt("How should codexgw get its first login?", type=click.Choice(options), default=default)
    )


def _adopt(store_dir: Path, auth_json: Path, *, name: str | None, link: bool) -> None:
    from codexgw.store import StoreError
    from codexgw.store.importers import ImportFailed, load_codex_auth_json

    try:
        tokens = load_codex_auth_json(auth_json)
    except ImportFailed as e:
        raise CliError(str(e)) from None
    store = open_store(store_dir, create=True)
    try:
        account, created = store.upsert_account(tokens, name=name)
    except StoreError as e:
        raise CliError(f"{auth_json}: {e}") from None
    if link:
        store.set_linked_path(account.id, str(auth_json.resolve()))
    how = "linked to" if link else "copied from"
    click.echo(f"{'imported' if created else 'updated'} {account.name}, {how} {auth_json}")


def ensure_api_key(config_path: Path) -> str:
    """Put a new random ``api_key`` into ``[serve]`` of ``config_path`` (created 0600 if missing,
    else edited as text, the rest kept) and return it."""
    key = secrets.token_urlsafe(32)
    line = f'api_key = "{key}"\n'
    text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    lines = text.splitlines(keepends=True)
    header = next((i for i, s in enumerate(lines) if s.strip().split("#")[0].strip() == "[serve]"), None)
    if header is None:
        text = (
            text
            + ("\n" if text and not text.endswith("\n") else "")
            + ("\n" if text else "")
            + "[serve]\n"
            + line
        )
    else:
        lines.insert(header + 1, line)
        text = "".join(lines)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config_path.with_name(f".{config_path.name}.codexgw-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, config_path)
    return key


def wait_for_health(url: str, timeout_s: float, *, usable: int) -> dict[str, Any] | None:
    """Poll ``{url}/health`` (wall clock: a real server starting) until it answers with at least one
    usable account (when the store has ``usable`` > 0) or ``timeout_s`` passes; the last answer."""
    from codexgw.cli.doctor_facts import health

    deadline = time.monotonic() + timeout_s
    while True:
        doc, _why = health(url)
        if doc is not None and (usable == 0 or (doc.get("usable_accounts") or 0) > 0):
            return doc
        if time.monotonic() >= deadline:
            return doc
        time.sleep(0.2)


@click.command("setup")
@click.option("--yes", "-y", is_flag=True, help="Take the default at every step; ask nothing.")
@click.option(
    "--login",
    "login_choice",
    type=click.Choice(LOGIN_CHOICES),
    default=None,
    help="How to get the first account [default: link an existing ~/.codex/auth.json, else device code or browser].",
)
@click.option("--name", default=None, help="Name of the first account.")
@click.option(
    "--codex-home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Codex's home [default: $CODEX_HOME or ~/.codex].",
)
@click.option("--no-configure-codex", is_flag=True, help="Leave the Codex CLI's config.toml alone.")
@click.option("--service-dry-run", is_flag=True, help="Print the service unit instead of installing it.")
@click.option("--system", is_flag=True, help="Install a system unit (root) instead of a user unit.")
@click.option(
    "--zipapp",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The codexgw.pyz the service runs [default: this one].",
)
@click.option(
    "--wait",
    "wait_s",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to wait for /health.",
)
@click.option("--min-poll-interval", default=1.0, hidden=True, type=click.FloatRange(0))
@serve_options
@click.pass_context
def setup(
    ctx: click.Context,
    yes: bool,
    login_choice: str | None,
    name: str | None,
    codex_home: Path | None,
    no_configure_codex: bool,
    service_dry_run: bool,
    system: bool,
    zipapp: Path | None,
    wait_s: float,
    min_poll_interval: float,
    **flags: Any,
) -> None:
    """Set up codexgw: an account, the Codex CLI, the service; then check it answers.

    Serve options given here go into the service. Running setup again changes only what is missing.
    """
    from codexgw.auth.login import browser_available
    from codexgw.cli.config_file import config_path_from
    from codexgw.cli.configure import configure_codex
    from codexgw.cli.login import call_flow, run_device, run_pkce
    from codexgw.cli.service import service_install, systemd_running
    from codexgw.cli.settings import load_settings
    from codexgw.cli.status import fetch_status, render_status
    from codexgw.config import is_loopback
    from codexgw.pool.health import AccountStatus

    store_dir: Path = ctx.obj["store_dir"]
    resolved, file = load_settings(ctx.obj, flags_of(flags), missing_ok=True)
    host, port = resolved.serve("host"), resolved.serve("port")
    auth_url = resolved.serve("auth_url")
    home = codex_home.expanduser() if codex_home else default_codex_home()

    _step(f"accounts (store {store_dir})")
    accounts = open_store(store_dir, create=True).list_accounts()
    usable = [a for a in accounts if a.enabled and a.status == AccountStatus.ACTIVE]
    if usable:
        click.echo(f"{len(usable)} usable account(s) already: {', '.join(a.name for a in usable)}")
    else:
        auth_json = home / "auth.json"
        how = choose_login(
            login_choice, has_codex_auth=auth_json.is_file(), browser=browser_available(), interactive=not yes
        )
        if how in ("link", "copy"):
            if not auth_json.is_file():
                raise CliError(f"no Codex login at {auth_json} to {how}; log in with --login device instead")
            _adopt(store_dir, auth_json, name=name, link=how == "link")
        elif how == "device":
            call_flow(run_device, store_dir, auth_url=auth_url, name=name, min_interval_s=min_poll_interval)
        elif how == "pkce":
            call_flow(
                run_pkce, store_dir, auth_url=auth_url, name=name, port=1455, timeout_s=300.0,
                open_browser=True, api_key_exchange=False,
            )  # fmt: skip
        else:
            click.echo("no account added (--login skip); add one later: codexgw login device")

    loopback = is_loopback(str(host))
    api_key = resolved.serve("api_key")
    if not loopback and not api_key:
        _step("gateway key")
        config_path, _explicit = config_path_from(ctx.obj.get("config_path"), os.environ)
        api_key = ensure_api_key(config_path)
        click.echo(f"generated an API key into {config_path} ([serve] api_key, mode 0600)")

    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    scheme = "https" if resolved.serve("certfile") else "http"
    url = f"{scheme}://{shown_host}:{port}"
    if not no_configure_codex:
        _step(f"Codex CLI ({home / 'config.toml'})")
        ctx.invoke(
            configure_codex,
            codex_home=home,
            base_url=f"{url}/v1",
            env_key=True if api_key else None,
            create=True,
        )

    _step("service")
    dry_run = service_dry_run or (sys.platform.startswith("linux") and not systemd_running())
    if dry_run and not service_dry_run:
        click.echo("systemd is not running here: showing the unit instead of installing it")
    service_flags = {k: v for k, v in flags.items() if k != "api_key"}
    ctx.invoke(service_install, system=system, dry_run=dry_run, zipapp=zipapp, **service_flags)

    _step(f"waiting for {url}/health")
    stored = open_store(store_dir, create=True).list_accounts()
    expected = sum(1 for a in stored if a.enabled and a.status == AccountStatus.ACTIVE)
    doc = wait_for_health(url, wait_s, usable=expected)
    if doc is None:
        if dry_run:
            click.echo(f"no server answers at {url} yet; start it with the unit above, or run: codexgw serve")
            return
        raise CliError(f"{url}/health did not answer within {wait_s:.0f} s; see: codexgw service logs")
    click.echo(f"healthy: {doc.get('usable_accounts')}/{doc.get('accounts')} accounts usable")
    click.echo("")
    click.echo(f"Base URL:  {url}/v1")
    if api_key:
        click.echo(
            "API key:   the api_key in [serve] of the config file (export CODEXGW_API_KEY=<it> for Codex)"
        )
    else:
        click.echo("API key:   none needed on loopback (any value works, e.g. sk-unused)")
    status_doc = fetch_status(url, api_key)
    if status_doc is not None:
        render_status(status_doc)
    if file.exists or api_key:
        click.echo("Settings:  codexgw config show")
