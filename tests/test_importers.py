"""codexgw.store.importers: Codex auth.json (codex-protocol.md §5) and peers' login files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from codexgw.store.importers import ImportFailed, load_accounts_file, load_codex_auth_json, parse_rfc3339
from tests.test_store import access_token, id_token

ID_TOKEN = id_token("acct-1")
ACCESS = access_token(tag="ACCESS_SECRET")
REFRESH = "rt_REFRESH_SECRET_value"
API_KEY = "sk-API_KEY_SECRET"
SECRETS = (ID_TOKEN, ACCESS, REFRESH, API_KEY, "SECRET")

LAST_REFRESH = "2026-04-25T12:34:56.123456789Z"
LAST_REFRESH_EPOCH = datetime(2026, 4, 25, 12, 34, 56, tzinfo=UTC).timestamp() + 0.123456789


def codex_auth(**changes: Any) -> dict[str, Any]:
    """A Codex CLI auth.json document, with top-level or ``tokens.<key>`` overrides (None deletes)."""
    doc: dict[str, Any] = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": ID_TOKEN,
            "access_token": ACCESS,
            "refresh_token": REFRESH,
            "account_id": "acct-1",
        },
        "last_refresh": LAST_REFRESH,
    }
    for key, value in changes.items():
        target, name = (doc["tokens"], key[7:]) if key.startswith("tokens_") else (doc, key)
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return doc


def write(tmp_path: Path, content: Any, name: str = "auth.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_load_codex_auth_json(tmp_path: Path) -> None:
    path = write(tmp_path, codex_auth())
    t = load_codex_auth_json(path)
    assert (t.id_token, t.access_token, t.refresh_token) == (ID_TOKEN, ACCESS, REFRESH)
    assert t.account_id == "acct-1"
    assert t.api_key is None
    assert t.last_refresh == pytest.approx(LAST_REFRESH_EPOCH, abs=1e-6)


def test_load_chatmock_auth_json_without_auth_mode(tmp_path: Path) -> None:
    doc = codex_auth(auth_mode=None, last_refresh="2026-04-25T14:34:56+02:00")
    doc["OPENAI_API_KEY"] = API_KEY
    t = load_codex_auth_json(write(tmp_path, doc))
    assert t.refresh_token == REFRESH and t.api_key == API_KEY
    assert t.last_refresh == datetime(2026, 4, 25, 12, 34, 56, tzinfo=UTC).timestamp()


def test_missing_or_bad_last_refresh_is_none(tmp_path: Path) -> None:
    assert load_codex_auth_json(write(tmp_path, codex_auth(last_refresh=None))).last_refresh is None
    assert load_codex_auth_json(write(tmp_path, codex_auth(last_refresh="yesterday"))).last_refresh is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00Z", 0.0),
        ("1970-01-01T00:00:01.5z", 1.5),
        ("1970-01-01T01:00:00+01:00", 0.0),
        ("1970-01-01 00:00:00.000000001Z", 1e-9),
        ("1970-01-01T00:00:00", None),
        ("not a time", None),
        ("1970-13-01T00:00:00Z", None),
    ],
)
def test_parse_rfc3339(text: str, expected: float | None) -> None:
    result = parse_rfc3339(text)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1e-12)


def _broken_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, a fragment the one-line message must contain)."""
    blocker = write(tmp_path, "x", "plainfile")
    return {
        "missing": (tmp_path / "nope.json", "no such file"),
        "directory": (tmp_path, "directory"),
        "unreadable": (blocker / "auth.json", "cannot read"),
        "not json": (write(tmp_path, '{"tokens": {"refresh_token": "' + REFRESH + '", ', "a"), "JSON"),
        "not utf8": (tmp_path / "bin", "JSON"),
        "array": (write(tmp_path, [REFRESH], "b"), "JSON object"),
        "api key only": (write(tmp_path, {"OPENAI_API_KEY": API_KEY}, "c"), "API key"),
        "apikey mode": (
            write(tmp_path, codex_auth(auth_mode="apikey", OPENAI_API_KEY=API_KEY), "d"),
            "API key",
        ),
        "no tokens": (write(tmp_path, codex_auth(tokens=None), "e"), "'tokens'"),
        "tokens not object": (write(tmp_path, codex_auth(tokens=REFRESH), "f"), "'tokens'"),
        "no refresh": (write(tmp_path, codex_auth(tokens_refresh_token=None), "g"), "tokens.refresh_token"),
        "empty access": (write(tmp_path, codex_auth(tokens_access_token=" "), "h"), "tokens.access_token"),
        "no id_token": (write(tmp_path, codex_auth(tokens_id_token=None), "i"), "tokens.id_token"),
        "id_token not jwt": (
            write(tmp_path, codex_auth(tokens_id_token="opaque_SECRET"), "j"),
            "tokens.id_token is not a valid JWT",
        ),
    }


BROKEN = [
    "missing", "directory", "unreadable", "not json", "not utf8", "array", "api key only", "apikey mode",
    "no tokens", "tokens not object", "no refresh", "empty access", "no id_token", "id_token not jwt",
]


@pytest.mark.parametrize("case", BROKEN)
def test_broken_files_fail_with_one_clear_line(tmp_path: Path, case: str) -> None:
    (tmp_path / "bin").write_bytes(b"\xff\xfe{\x00")
    path, fragment = _broken_cases(tmp_path)[case]
    for load in (load_codex_auth_json, load_accounts_file):
        with pytest.raises(ImportFailed) as info:
            load(path)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"{path}: ")
        assert fragment in message
        for secret in SECRETS:
            assert secret not in message


def test_accounts_file_detects_codex_auth_json(tmp_path: Path) -> None:
    [(name, t)] = load_accounts_file(write(tmp_path, codex_auth()))
    assert name is None and t.refresh_token == REFRESH


def test_accounts_file_reads_codex_reverse_accounts(tmp_path: Path) -> None:
    entry = {
        "name": "work",
        "email": "alice@example.com",
        "plan_type": "plus",
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "id_token": ID_TOKEN,
        "api_key": "",
        "last_refresh": "2026-04-25T12:34:56Z",
    }
    second = {**entry, "name": "", "refresh_token": "rt_2", "last_refresh": 1700000000}
    items = load_accounts_file(write(tmp_path, {"accounts": [entry, second]}, "accounts.json"))
    assert [name for name, _ in items] == ["work", None]
    assert [t.refresh_token for _, t in items] == [REFRESH, "rt_2"]
    assert items[0][1].api_key is None
    assert items[0][1].last_refresh == datetime(2026, 4, 25, 12, 34, 56, tzinfo=UTC).timestamp()
    assert items[1][1].last_refresh == 1700000000.0


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"accounts": []}, "'accounts' is empty"),
        ({"accounts": {"a": 1}}, "accounts.a is not a JSON object"),  # an object: opencode-multi-auth
        ({"accounts": ["x"]}, "accounts[0] is not a JSON object"),
        ({"accounts": [{"id_token": ID_TOKEN, "access_token": ACCESS}]}, "accounts[0].refresh_token"),
        ({"something": "else"}, "not a recognised login file"),
    ],
)
def test_accounts_file_errors(tmp_path: Path, doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ImportFailed) as info:
        load_accounts_file(write(tmp_path, doc))
    assert fragment in str(info.value)
    assert REFRESH not in str(info.value) and ACCESS not in str(info.value)
