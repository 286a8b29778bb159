"""``status`` and ``accounts list`` on an 80-column terminal: the state (with its cooldown) and the
status are never cut, long errors and reasons are shortened, ``--wide`` and ``--json`` show it all."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.cells import cell_len

from codexgw.cli import status as status_module
from codexgw.cli.main import main
from codexgw.cli.tables import Col, fit_widths
from codexgw.store import Store
from tests.test_importers import codex_auth, write
from tests.test_store import id_token

LONG_ERROR = (
    "the Codex backend answered HTTP 500: An error occurred while processing your request. You can "
    "retry your request, or contact us through our help center if the error persists."
)
REASON = "the Codex backend refused the token even after a refresh (HTTP 401)"


def account(name: str, **kw: Any) -> dict[str, Any]:
    now = time.time()
    row = {
        "name": name, "plan_type": "plus", "enabled": True, "status": "active", "status_reason": None,
        "pinned": False, "cooldown": None, "requests": 1234, "errors": 56, "last_error": None,
        "quota": {
            "primary": {"used_percent": 42, "window_minutes": 300, "resets_at": now + 7500},
            "secondary": {"used_percent": 97, "window_minutes": 10080, "resets_at": now + 3 * 86400},
        },
    }  # fmt: skip
    row.update(kw)
    return row


def document() -> dict[str, Any]:
    now = time.time()
    return {
        "object": "codexgw.status",
        "source": "server",
        "time": now,
        "pool": {"strategy": "round-robin", "pinned": None, "usable": 1, "accounts": 4,
                 "headroom": {"accounts": 0.58, "percent": 14.5}},
        "accounts": [
            account("alice", pinned=True),
            account("bob-the-builder", cooldown={"until": now + 14700, "in_s": 14700, "reason": "usage_limit"},
                    last_error=LONG_ERROR),
            account("carol", status="needs_login", status_reason=REASON, last_error="x"),
            account("dave", enabled=False),
        ],
    }  # fmt: skip


def status(monkeypatch: pytest.MonkeyPatch, *args: str, columns: int = 80) -> Result:
    monkeypatch.setattr(status_module, "fetch_status", lambda url, key: document())
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(main, ["status", "--url", "gw:8080", *args])
    assert result.exit_code == 0, result.output
    return result


def lines_fit(text: str, width: int) -> None:
    for line in text.splitlines():
        assert cell_len(line) <= width, line


def test_status_at_80_columns_keeps_state_and_cooldown(monkeypatch: pytest.MonkeyPatch) -> None:
    out = status(monkeypatch).stdout
    lines_fit(out, 80)
    rows = out.splitlines()[2:6]
    for row, state in zip(
        rows, ("usable", "cooling 4h05m (usage_limit)", "needs_login", "disabled"), strict=True
    ):
        assert f"  {state}" in row, row
    assert "cooling 4h05m (usage_limit)" in rows[1] and "bob-the-bui…" in rows[1]
    header = out.splitlines()[1].split()
    assert header[:3] == ["name", "plan", "state"] and "5h" in header and "7d" in header
    assert "↻2h05m" in out and "↻3d00h" in out  # the quota windows stay, as numbers
    assert LONG_ERROR not in out  # too long for 80 columns
    assert "--wide or --json shows all of it" in out


def test_status_wide_and_json_show_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    wide = status(monkeypatch, "--wide").stdout
    assert LONG_ERROR in wide and f"needs_login: {REASON}" in wide and "█" in wide
    assert "shortened" not in wide
    doc = json.loads(status(monkeypatch, "--json").stdout)
    assert doc["accounts"][1]["last_error"] == LONG_ERROR


def test_status_with_room_shows_bars_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    out = status(monkeypatch, columns=160).stdout
    lines_fit(out, 160)
    assert "█" in out and "needs_login: the Codex backend" in out and "the Codex backe…" in out
    out = status(monkeypatch, columns=400).stdout
    assert LONG_ERROR in out and "shortened" not in out


def test_status_url_without_a_scheme_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(status_module, "fetch_status", lambda url, key: seen.append(url) or document())
    result = CliRunner().invoke(main, ["status", "--url", "localhost:8080"])
    assert result.exit_code == 0 and seen == ["http://localhost:8080"]


def test_status_url_pointing_at_nothing_says_so_and_exits_1(tmp_path: Path) -> None:
    Store.open(tmp_path / "s")
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "status", "--url", "127.0.0.1:1"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no codexgw server answers at http://127.0.0.1:1")
    assert "from the store" not in result.output


def test_accounts_list_at_80_columns_keeps_the_status(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    for n, email in enumerate(("someone.with.a.rather.long.address@example-company.com", "b@example.com")):
        doc = codex_auth(tokens_id_token=id_token(f"acct-{n}", email=email), tokens_account_id=f"acct-{n}")
        imported = CliRunner().invoke(
            main, ["--store", str(store_dir), "accounts", "import", str(write(tmp_path, doc, f"{n}.json"))]
        )
        assert imported.exit_code == 0, imported.output
    store = Store.open(store_dir)
    first = store.list_accounts()[0]
    store.set_status(first.id, "needs_login", REASON)
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["--store", str(store_dir), "accounts", "list"])
    assert result.exit_code == 0, result.output
    lines_fit(result.stdout, 80)
    assert "needs_login" in result.stdout and " active " in result.stdout + " "
    assert "act…" not in result.stdout
    assert "shortened to fit" in result.stdout
    wide = CliRunner(env={"COLUMNS": "80"}).invoke(
        main, ["--store", str(store_dir), "accounts", "list", "--wide"]
    )
    assert REASON in wide.stdout and "someone.with.a.rather.long.address@example-company.com" in wide.stdout


def test_fit_widths_shrinks_then_leaves_out_and_never_cuts_kept_columns() -> None:
    columns = [Col("name", shrink=True, min_width=4), Col("state"), Col("note", shrink=True, optional=True)]
    rows = [["abcdefghij", "cooling 4h05m", "x" * 40]]
    assert fit_widths(columns, rows, 100) == [10, 13, 40]
    assert fit_widths(columns, rows, 40) == [10, 13, 13]
    assert fit_widths(columns, rows, 25) == [10, 13, None]  # note left out: name needs no cut then
    assert fit_widths(columns, rows, 19) == [4, 13, None]
    assert fit_widths(columns, rows, 5)[1] == 13  # never cut, even when it cannot fit
