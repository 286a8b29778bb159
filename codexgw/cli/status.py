"""``codexgw status``: the pool at a glance, as a table with quota bars (rich).

From a running server's ``GET /status`` (live cooldowns, quota windows, counters); when none answers
at ``--url``, from the store alone (statuses, weights, the pin; no live state). Renders only what
the status document holds, which never includes a token (see :mod:`codexgw.status`).

Top-level imports stay light (click); httpx, rich and the store load inside the command.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from codexgw.cli.common import CliError, cli_name, format_duration, no_accounts, open_store
from codexgw.cli.tables import Col, fit_table, fit_widths, natural_widths, table_width
from codexgw.cli.tables import console as table_console
from codexgw.config import default_store_dir

__all__ = ["quota_bar", "render_status", "status", "window_label"]

DEFAULT_URL = "http://127.0.0.1:8080"
BAR_WIDTH = 12


def window_label(minutes: int | None, fallback: str) -> str:
    """``5h``, ``7d`` … for a window length in minutes; ``fallback`` when unknown."""
    if not minutes:
        return fallback
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def quota_bar(window: dict[str, Any] | None, now: float, *, width: int = BAR_WIDTH) -> Any:
    """A rich ``Text``: ``█████░░░░ 42% ↻2h05m`` (used share, then time to reset); ``-`` when unknown;
    ``width`` 0 leaves the bar out (``42% ↻2h05m``)."""
    from rich.text import Text

    if not window:
        return Text("-", style="dim")
    used = float(window.get("used_percent") or 0.0)
    filled = min(width, max(0, round(width * min(used, 100.0) / 100.0)))
    style = "green" if used < 70 else "yellow" if used < 90 else "red"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    text.append(f"{' ' if width else ''}{used:3.0f}%", style=None if width else style)
    resets_at = window.get("resets_at")
    if resets_at is not None:
        text.append(f" ↻{format_duration(resets_at - now, fine=True)}", style="dim")
    return text


COLUMNS = (
    Col("name", shrink=True, min_width=12),
    Col("plan", optional=True),
    Col("state"),  # replaced per table: its reason may be cut, never the state or the cooldown
    Col("5h"),
    Col("7d"),
    Col("req", optional=True),
    Col("err", optional=True),
    Col("last error", shrink=True, min_width=16, optional=True),
)
"""``status`` columns: the state (with the cooldown) and the quota windows are never cut."""


def render_status(
    doc: dict[str, Any], *, note: str | None = None, wide: bool = False, out: Any = None
) -> None:
    """Print the status document as a summary line plus one table row per account, fitted to the
    console (:mod:`codexgw.cli.tables`): the state column and its cooldown are never cut, quota bars
    narrow or go, long errors are shortened. ``wide`` shows everything (bars, reasons, full errors)."""
    console = out if out is not None else table_console(wide=wide)
    now = float(doc.get("time") or time.time())
    pool = doc["pool"]
    headroom = pool.get("headroom") or {}
    summary = [
        f"strategy [bold]{pool.get('strategy')}[/bold]",
        f"pinned [bold]{pool['pinned']}[/bold] (strict)" if pool.get("pinned") else "not pinned",
        f"usable {pool.get('usable')}/{pool.get('accounts')}",
    ]
    if doc.get("source") == "server":
        percent = headroom.get("percent")
        summary.append(
            f"headroom {headroom.get('accounts', 0):.2f} accounts"
            + (f" ({percent:.0f}%)" if percent is not None else "")
        )
    if note:
        console.print(f"[dim]{note}[/dim]")
    console.print(" · ".join(summary))
    rows = doc.get("accounts") or []
    if not rows:
        console.print(no_accounts())
        return
    first_quota = next((r["quota"] for r in rows if r.get("quota")), None) or {}
    labels = [
        window_label((first_quota.get(w) or {}).get("window_minutes"), w) for w in ("primary", "secondary")
    ]
    state_width = max(len("state"), *(_cell_width(_state(r, now, reason=False)) + 1 for r in rows))
    state = Col("state", shrink=True, min_width=state_width)  # a reason may be cut, never the state
    columns = [COLUMNS[0], COLUMNS[1], state, Col(labels[0]), Col(labels[1]), *COLUMNS[5:]]
    has_errors = any(r.get("last_error") for r in rows)
    if not has_errors:
        columns = columns[:-1]
    for bar in (BAR_WIDTH, 6, 0):  # the widest quota bars with which no column is left out
        cells = [_cells(r, now, bar=bar, wide=wide)[: len(columns)] for r in rows]
        widths = fit_widths(columns, cells, console.width)
        if wide or None not in widths:
            break
    if wide:
        console.width = max(console.width, table_width(columns, cells))
        console.print(fit_table(columns, cells, console.width, wide=True))
        return
    console.print(fit_table(columns, cells, console.width))
    natural = natural_widths(columns, cells)
    if any(w is None or w < n for w, n in zip(widths, natural, strict=True)):
        console.print("[dim](shortened to fit; --wide or --json shows all of it)[/dim]")


def _cells(row: dict[str, Any], now: float, *, bar: int, wide: bool) -> list[Any]:
    quota = row.get("quota") or {}
    return [
        ("📌 " if row.get("pinned") else "") + escape(str(row["name"])),
        row.get("plan_type") or "-",
        _state(row, now),
        quota_bar(quota.get("primary"), now, width=bar),
        quota_bar(quota.get("secondary"), now, width=bar),
        "-" if row.get("requests") is None else str(row["requests"]),
        "-" if row.get("errors") is None else str(row["errors"]),
        escape(str(row.get("last_error") or "")),
    ]


def _state(row: dict[str, Any], now: float, *, reason: bool = True) -> str:
    """``usable``, ``disabled``, ``cooling 4m (usage_limit)``, ``needs_login: reason`` (without the
    reason unless ``reason``) …"""
    if not row.get("enabled"):
        return "[dim]disabled[/dim]"
    if row.get("status") == "login_expiring":  # serving on its last access token
        why = row.get("status_reason")
        return f"[yellow]login_expiring[/yellow]{': ' + escape(why) if reason and why else ''}"
    if row.get("status") != "active":
        why = row.get("status_reason")
        reason = f": {escape(why)}" if reason and why else ""
        return f"[red]{row.get('status')}[/red]{reason}"
    cooldown = row.get("cooldown")
    if cooldown:
        return f"[yellow]cooling {format_duration(cooldown['until'] - now, fine=True)}[/yellow] ({cooldown.get('reason')})"
    return "[green]usable[/green]"


def fetch_status(url: str, api_key: str | None) -> dict[str, Any] | None:
    """``GET {url}/status``; ``None`` when nothing listens there.

    Raises:
        click.ClickException: the server refused (wrong API key …) or answered no status document.
    """
    from codexgw.client.calls import get_sync
    from codexgw.errors import UpstreamConnectionError

    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = get_sync(f"{url.rstrip('/')}/status", peer=url, headers=headers, timeout=5.0)
    except UpstreamConnectionError as exc:
        if exc.connect_failed:
            return None
        raise click.ClickException(f"{url} did not answer: {exc.cause}") from None
    if response.status_code == 401:
        raise click.ClickException(f"{url} needs the gateway API key: pass --api-key or set CODEXGW_API_KEY")
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if response.status_code != 200 or not isinstance(doc, dict) or doc.get("object") != "codexgw.status":
        raise click.ClickException(f"{url}/status answered HTTP {response.status_code}, not a codexgw status")
    return doc


def status_from_store_dir(store_dir: Any) -> dict[str, Any]:
    """The status document built from the store alone (see :func:`codexgw.status.status_from_store`)."""
    from codexgw.status import status_from_store
    from codexgw.store.pool_settings import read_pool_settings

    store = open_store(store_dir, error=click.ClickException)
    accounts = store.list_accounts()
    stored = read_pool_settings(store)
    return status_from_store(
        accounts, strategy=stored.strategy, pinned_account_id=stored.pinned_account_id, now=time.time()
    )


def normalize_url(url: str) -> str:
    """``localhost:8080`` → ``http://localhost:8080``; a URL with a scheme stays (no trailing ``/``).

    Raises:
        CliError: the scheme is neither http nor https.
    """
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise CliError(f"--url must be an http:// or https:// address, not {url}")
    return url


@click.command("status")
@click.option(
    "--url",
    envvar="CODEXGW_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The running server to ask (host:port is enough). Env: CODEXGW_URL.",
)
@click.option(
    "--api-key", envvar="CODEXGW_API_KEY", default=None, help="Gateway API key. Env: CODEXGW_API_KEY."
)
@click.option("--json", "as_json", is_flag=True, help="Print the status document as JSON.")
@click.option("--wide", is_flag=True, help="Show everything: quota bars, reasons, whole errors.")
@click.option("--offline", is_flag=True, help="Do not ask a server; show what the store says.")
@click.pass_context
def status(
    ctx: click.Context, url: str, api_key: str | None, as_json: bool, wide: bool, offline: bool
) -> None:
    """Show the pool: strategy, pin, each account's state, cooldown and quota windows.

    Asks the server at --url. When no --url is given and none answers at the default, shows the store
    (no live cooldowns or quota); a --url (or CODEXGW_URL) where nothing answers is an error.
    Never shows tokens.
    """
    from click.core import ParameterSource

    url = normalize_url(url)
    doc = None if offline else fetch_status(url, api_key)
    note = None
    if doc is None:
        if not offline and ctx.get_parameter_source("url") is not ParameterSource.DEFAULT:
            raise CliError(f"no codexgw server answers at {url} (is `{cli_name()} serve` running there?)")
        doc = status_from_store_dir((ctx.obj or {}).get("store_dir") or default_store_dir())
        note = (
            "from the store (no live cooldowns or quota)"
            if offline
            else f"no server at {url}; from the store (no live cooldowns or quota)"
        )
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    render_status(doc, note=note, wide=wide)


def _cell_width(markup: str) -> int:
    from rich.text import Text

    return Text.from_markup(markup).cell_len


def escape(text: str) -> str:
    """``text`` with rich markup escaped (rich loads only when a table is drawn)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
