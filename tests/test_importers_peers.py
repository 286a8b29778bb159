"""Importing other tools' login files (codexgw.store.peer_files, `accounts import`): codex-multi-auth's
openai-accounts.json, opencode-multi-auth's accounts.json (plain and encrypted), CLIProxyAPI's Codex
credentials; and `accounts remove --all`."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from codexgw.cli.main import main
from codexgw.oauth.jwt import AUTH_CLAIM, PROFILE_CLAIM
from codexgw.store import Store
from codexgw.store.importers import ImportFailed, read_logins
from tests.test_jwt import make_jwt
from tests.test_store import id_token

NOW = 1_800_000_000


def access(account_id: str, email: str, plan: str = "plus", tag: str = "") -> str:
    """An access token as ChatGPT issues it: the auth claims and the profile email (codex-protocol.md §4)."""
    return make_jwt(
        {
            "exp": NOW + 3600,
            AUTH_CLAIM: {
                "chatgpt_account_id": account_id,
                "chatgpt_plan_type": plan,
                "chatgpt_user_id": f"user-{tag}",
            },
            PROFILE_CLAIM: {"email": email},
            "tag": f"SECRET-{tag}",
        }
    )


MULTI_AUTH = {
    "version": 3,
    "accounts": [
        {
            "accountId": "acct-ma-1",
            "accountIdSource": "token",
            "accountLabel": "work",
            "email": "ada@example.com",
            "refreshToken": "rt_MA1_SECRET",
            "accessToken": access("acct-ma-1", "ada@example.com", "pro", "ma1"),
            "expiresAt": (NOW + 3600) * 1000,
            "enabled": True,
            "addedAt": 1_700_000_000_000,
            "lastUsed": 1_700_000_100_000,
            "rateLimitResetTimes": {"codex": 1_700_000_200_000},
        },
        {
            "accountId": "acct-ma-2",
            "email": "bob@example.com",
            "refreshToken": "rt_MA2_SECRET",
            "addedAt": 1_700_000_000_000,
            "lastUsed": 0,
        },
    ],
    "activeIndex": 0,
    "activeIndexByFamily": {"codex": 0},
}

OPENCODE = {
    "accounts": {
        "personal": {
            "alias": "personal",
            "accessToken": access("acct-oc-1", "cy@example.com", "plus", "oc1"),
            "refreshToken": "rt_OC1_SECRET",
            "idToken": id_token("acct-oc-1", email="cy@example.com", plan="plus"),
            "accountId": "acct-oc-1",
            "expiresAt": (NOW + 3600) * 1000,
            "email": "cy@example.com",
            "lastRefresh": "2026-04-25T10:00:00.000Z",
            "usageCount": 12,
        },
        "backup": {
            "alias": "backup",
            "accessToken": access("acct-oc-2", "di@example.com", "pro", "oc2"),
            "refreshToken": "rt_OC2_SECRET",
            "expiresAt": (NOW + 3600) * 1000,
            "usageCount": 0,
        },
    },
    "activeAlias": "personal",
    "rotationIndex": 0,
    "lastRotation": 1_700_000_000_000,
}


def cliproxy(account_id: str, email: str, tag: str) -> dict[str, Any]:
    return {
        "id_token": id_token(account_id, email=email, plan="team"),
        "access_token": access(account_id, email, "team", tag),
        "refresh_token": f"rt_{tag}_SECRET",
        "account_id": account_id,
        "last_refresh": "2026-04-25T10:00:00Z",
        "email": email,
        "type": "codex",
        "expired": "2026-05-05T10:00:00Z",
    }


def encrypt_opencode(doc: dict[str, Any], passphrase: str) -> dict[str, Any]:
    """What opencode-multi-auth's encryptStore writes (node's scryptSync defaults, AES-256-GCM)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, iv = os.urandom(16), os.urandom(12)
    key = hashlib.scrypt(passphrase.encode(), salt=salt, n=16384, r=8, p=1, dklen=32)
    sealed = AESGCM(key).encrypt(iv, json.dumps(doc).encode(), None)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return {
        "encrypted": True,
        "version": 1,
        "salt": b64(salt),
        "iv": b64(iv),
        "tag": b64(sealed[-16:]),
        "data": b64(sealed[:-16]),
    }


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


def cli(store: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner(env=env).invoke(main, ["--store", str(store), *args], catch_exceptions=False)
    assert "SECRET" not in result.output
    return result


def test_multi_auth_openai_accounts(tmp_path: Path) -> None:
    path = write(tmp_path / ".codex" / "multi-auth" / "openai-accounts.json", MULTI_AUTH)
    logins = read_logins(path)
    assert logins.format == "codex-multi-auth openai-accounts.json"
    [(name, tokens)] = logins.items
    assert name == "work" and tokens.refresh_token == "rt_MA1_SECRET" and tokens.account_id == "acct-ma-1"
    assert tokens.id_token == tokens.access_token  # the access token's claims stand in
    assert logins.skipped == [
        "accounts[1]: no access token or id_token to tell the account by; log it in with codexgw login device"
    ]
    result = cli(tmp_path / "store", "accounts", "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"read {path} as codex-multi-auth openai-accounts.json",
        "imported work (ada@example.com, pro)",
    ]
    assert "skipped accounts[1]" in result.stderr
    [account] = Store.open(tmp_path / "store").list_accounts()
    assert (account.chatgpt_account_id, account.email, account.plan_type) == (
        "acct-ma-1",
        "ada@example.com",
        "pro",
    )
    assert account.user_id == "user-ma1" and account.access_expires_at == NOW + 3600


def test_opencode_multi_auth_accounts(tmp_path: Path) -> None:
    path = write(tmp_path / "accounts.json", OPENCODE)
    result = cli(tmp_path / "store", "accounts", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported personal (cy@example.com, plus)" in result.stdout
    assert "imported backup (di@example.com, pro)" in result.stdout
    accounts = {a.name: a for a in Store.open(tmp_path / "store").list_accounts()}
    assert accounts["personal"].last_refresh is not None
    assert accounts["backup"].chatgpt_account_id == "acct-oc-2"


def test_opencode_encrypted_store(tmp_path: Path) -> None:
    path = write(tmp_path / "accounts.json", encrypt_opencode(OPENCODE, "correct horse battery"))
    assert "rt_OC1" not in path.read_text()
    missing = cli(tmp_path / "store", "accounts", "import", str(path))
    assert missing.exit_code == 1 and "set CODEX_SOFT_STORE_PASSPHRASE" in missing.stderr
    wrong = cli(
        tmp_path / "store", "accounts", "import", str(path), env={"CODEX_SOFT_STORE_PASSPHRASE": "nope"}
    )
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.stderr
    assert Store.open(tmp_path / "store").list_accounts() == []
    ok = cli(
        tmp_path / "store",
        "accounts",
        "import",
        str(path),
        env={"CODEX_SOFT_STORE_PASSPHRASE": "correct horse battery"},
    )
    assert ok.exit_code == 0, ok.output
    assert len(Store.open(tmp_path / "store").list_accounts()) == 2


def test_cliproxy_file_and_directory(tmp_path: Path) -> None:
    auth_dir = tmp_path / ".cli-proxy-api"
    one = write(auth_dir / "codex-ed@example.com-team.json", cliproxy("acct-cp-1", "ed@example.com", "cp1"))
    write(auth_dir / "codex-fay@example.com-team.json", cliproxy("acct-cp-2", "fay@example.com", "cp2"))
    write(auth_dir / "gemini-ed@example.com.json", {"type": "gemini", "token": {"refresh_token": "x"}})
    single = read_logins(one)
    assert single.format == "CLIProxyAPI Codex credential" and single.items[0][1].account_id == "acct-cp-1"
    result = cli(tmp_path / "store", "accounts", "import", str(auth_dir))
    assert result.exit_code == 0, result.output
    assert "imported ed (ed@example.com, team)" in result.stdout
    assert "imported fay (fay@example.com, team)" in result.stdout
    assert "skipped gemini-ed@example.com.json: not a Codex credential (type 'gemini')" in result.stderr
    again = cli(tmp_path / "store", "accounts", "import", str(one))
    assert again.stdout.splitlines()[-1] == "updated ed (ed@example.com, team)"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (
            {"version": 3, "accounts": [{"refreshToken": "rt_x_SECRET"}]},
            "nothing to import (accounts[0]: no access token",
        ),
        (
            {"version": 3, "accounts": [{"refreshToken": "r", "accessToken": "opaque-SECRET"}]},
            "the access token is not a JWT",
        ),
        (
            {"version": 3, "accounts": [{"refreshToken": "r", "accessToken": "a", "idToken": "bad-SECRET"}]},
            "accounts[0].idToken is not a valid JWT",
        ),
        ({"accounts": {"x": "y"}}, "accounts.x is not a JSON object"),
        ({"type": "codex", "access_token": "a"}, "file: no refresh token"),
        ({"encrypted": True, "data": "x"}, "set CODEX_SOFT_STORE_PASSPHRASE"),
    ],
)
def test_broken_peer_files_fail_in_one_line(tmp_path: Path, doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ImportFailed) as info:
        read_logins(write(tmp_path / "f.json", doc))
    assert fragment in str(info.value) and "SECRET" not in str(info.value) and "\n" not in str(info.value)


def test_empty_cliproxy_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportFailed, match="no CLIProxyAPI Codex credential"):
        read_logins(tmp_path / "empty")


def test_remove_all(tmp_path: Path) -> None:
    store = tmp_path / "store"
    cli(store, "accounts", "import", str(write(tmp_path / "accounts.json", OPENCODE)))
    both = cli(store, "accounts", "remove", "personal", "--all")
    assert both.exit_code == 2 and "not both" in both.output
    usage = cli(store, "accounts", "remove")
    assert usage.exit_code == 2 and "--all" in usage.output
    result = cli(store, "accounts", "remove", "--all", "--no-revoke")
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.splitlines()) == ["removed backup", "removed personal"]
    assert Store.open(store).list_accounts() == []
    assert "no accounts" in cli(store, "accounts", "remove", "--all", "--no-revoke").stdout
