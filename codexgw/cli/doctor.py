"""``codexgw doctor``: one line per check, ✓ / ! / ✗ / –, a fix for each problem; exit 1 on any ✗.

The checks are pure (:mod:`codexgw.cli.doctor_checks`); this module gathers the facts
(:mod:`codexgw.cli.doctor_facts`), runs them in order and prints them (or ``--json``). The settings
(port, key, upstream and issuer URLs) are the ones ``serve`` would use (flags > env > config file >
defaults), so the doctor examines the install as it is configured.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from codexgw.cli.doctor_checks import (
    FAIL,
    Check,
    check_accounts,
    check_clock,
    check_codex_config,
    check_port,
    check_python,
    check_reach,
    check_server,
    check_service,
    check_shiv_root,
    check_store,
    check_zipapp,
)

__all__ = ["doctor", "run_checks"]

CALLBACK_PORT = 1455
SYMBOLS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "–"}


def run_checks(
    *,
    store_dir: Path,
    url: str,
    api_key: str | None,
    upstream: str,
    auth_url: str,
    codex_home: Path,
    scope: str,
    offline: bool,
    callback_port: int,
) -> list[Check]:
    """Gather every fact and run every check, in the order they are printed."""
    from codexgw.cli import doctor_facts as facts
    from codexgw.cli.service import find_zipapp, temporary_dirs
    from codexgw.config import is_loopback

    checks: list[Check] = [check_python(tuple(sys.version_info[:3]), sys.executable)]  # type: ignore[arg-type]
    zipapp = find_zipapp()
    inside = next((str(t) for t in temporary_dirs() if zipapp and zipapp.is_relative_to(t)), None)
    checks.append(check_zipapp(str(zipapp) if zipapp else None, inside))
    root, writable, from_env = facts.shiv_root()
    checks.append(check_shiv_root(str(zipapp) if zipapp else None, root, writable, from_env))
    store, accounts = facts.store_facts(store_dir)
    checks += check_store(store)
    health, health_error = facts.health(url)
    cooldowns = facts.cooldowns(url, api_key) if health is not None else None
    if store.exists and store.error is None:
        checks += check_accounts(accounts, cooldowns)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    checks.append(check_port(facts.port_facts(host, port, "codexgw serve", codexgw_url=url), required=True))
    callback = facts.port_facts("127.0.0.1", callback_port, "browser login callback", codexgw_url=None)
    checks.append(check_port(callback, required=False))
    checks.append(check_service(*facts.service_facts(scope), scope))
    checks.append(check_server(url, health, health_error))
    path, codex, codex_error = facts.codex_config(codex_home)
    needs_key = bool(api_key) or not is_loopback(host)
    checks.append(
        check_codex_config(path, codex, codex_error, f"{url.rstrip('/')}/v1", needs_key, dict(os.environ))
    )
    if offline:
        checks.append(Check("network", "skip", "--offline: upstream and OAuth issuer not probed"))
        return checks
    up, date = facts.reach("upstream", f"{upstream.rstrip('/')}/codex/models")
    checks.append(
        check_clock(facts.now() if date is not None else None, date, urlsplit(upstream).hostname or upstream)
    )
    checks.append(check_reach(up))
    issuer, _ = facts.reach("oauth issuer", f"{auth_url.rstrip('/')}/.well-known/openid-configuration")
    checks.append(check_reach(issuer))
    return checks


def render(checks: list[Check]) -> list[str]:
    """``✓ name: detail`` lines; a ✗ or ! line is followed by ``  fix: …``."""
    lines = []
    for check in checks:
        lines.append(f"{SYMBOLS[check.status]} {check.name}: {check.detail}")
        if check.fix and check.status in ("fail", "warn"):
            lines.append(f"    fix: {check.fix}")
    failed = sum(c.status == FAIL for c in checks)
    lines.append("all checks passed" if not failed else f"{failed} check(s) failed")
    return lines


@click.command("doctor")
@click.option(
    "--url", default=None, help="The server to check [default: http://HOST:PORT of the serve settings]."
)
@click.option("--upstream", default=None, help="Codex backend base URL [default: the serve setting].")
@click.option("--auth-url", default=None, help="OAuth issuer URL [default: the serve setting].")
@click.option(
    "--codex-home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Codex's home [default: $CODEX_HOME or ~/.codex].",
)
@click.option("--system", is_flag=True, help="Check the system unit instead of the user unit.")
@click.option("--offline", is_flag=True, help="Do not probe the upstream and the OAuth issuer.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON array.")
@click.option("--callback-port", default=CALLBACK_PORT, hidden=True, type=click.IntRange(0, 65535))
@click.pass_context
def doctor(
    ctx: click.Context,
    url: str | None,
    upstream: str | None,
    auth_url: str | None,
    codex_home: Path | None,
    system: bool,
    offline: bool,
    as_json: bool,
    callback_port: int,
) -> None:
    """Check the install: Python, zipapp, store, accounts, ports, service, server, Codex config, network.

    One line per check with a fix for each problem; exit status 1 when any check fails.
    """
    from codexgw.cli.common import default_codex_home
    from codexgw.cli.settings import load_settings

    resolved, _file = load_settings(ctx.obj)
    host = resolved.serve("host")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    scheme = "https" if resolved.serve("certfile") else "http"
    checks = run_checks(
        store_dir=ctx.obj["store_dir"],
        url=(url or f"{scheme}://{shown}:{resolved.serve('port')}").rstrip("/"),
        api_key=resolved.serve("api_key"),
        upstream=upstream or resolved.serve("upstream"),
        auth_url=auth_url or resolved.serve("auth_url"),
        codex_home=codex_home.expanduser() if codex_home else default_codex_home(),
        scope="system" if system else "user",
        offline=offline,
        callback_port=callback_port,
    )
    failed = any(c.status == FAIL for c in checks)
    if as_json:
        doc: dict[str, Any] = {"ok": not failed, "checks": [c.as_dict() for c in checks]}
        click.echo(json.dumps(doc, indent=2))
    else:
        for line in render(checks):
            click.echo(line)
    if failed:
        ctx.exit(1)
