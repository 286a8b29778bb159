"""Read logins other tools saved: Codex's ``auth.json`` (codex-protocol.md §5) and peers' files.

Every failure is an :class:`ImportFailed` whose message is ONE line naming the file and the problem;
no message ever contains a token (not even a fragment of the JSON).

Formats recognised by :func:`load_accounts_file`:

* Codex CLI ``auth.json``: ``{"auth_mode"?, "OPENAI_API_KEY", "tokens": {"id_token", "access_token",
  "refresh_token", "account_id"}, "last_refresh": RFC 3339}``; ChatMock's ``auth.json`` has the same
  shape, possibly without ``auth_mode``.
* codex-reverse (Go) ``accounts.json``: ``{"accounts": [{"name", "email", "plan_type",
  "access_token", "refresh_token", "id_token", "api_key", "last_refresh"}, …]}``.
* codex-multi-auth / codex-app-account-router ``openai-accounts.json``, opencode-multi-auth's
  ``accounts.json`` (plain or encrypted) and CLIProxyAPI's Codex credential files (one, or a
  directory of them): see :mod:`codexgw.store.peer_files`. :func:`read_logins` reads any of them.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from codexgw.oauth.jwt import InvalidJWTError, decode_jwt_payload
from codexgw.store.models import TokenSet
from codexgw.store.peer_files import (
    PeerFileError,
    PeerLogins,
    cliproxy_entry,
    decrypt_opencode_store,
    multi_auth_accounts,
    opencode_accounts,
)

_MAX_FILE_BYTES = 16 * 1024 * 1024

_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})")


class ImportFailed(Exception):
    """A login file could not be imported; ``str(e)`` is one line, ``"<path>: <problem>"``."""


def parse_rfc3339(text: str) -> float | None:
    """Return epoch seconds for an RFC 3339 timestamp (any fraction length, ``Z`` or offset), or None.

    Example: ``"2026-04-25T12:34:56.123456789Z"`` (chrono's format, codex-protocol.md §5).
    """
    m = _RFC3339.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        return None
    date, clock, frac, tz = m.groups()
    tz = "+00:00" if tz in ("Z", "z") else (tz if ":" in tz else f"{tz[:3]}:{tz[3:]}")
    try:
        base = datetime.fromisoformat(f"{date}T{clock}{tz}")
    except ValueError:
        return None
    return base.timestamp() + (float(f"0.{frac}") if frac else 0.0)


def _last_refresh(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_rfc3339(value)
    return None


def _read_json(path: Path) -> Any:
    where = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ImportFailed(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ImportFailed(f"{where}: is a directory, not a file") from None
    except OSError as e:
        raise ImportFailed(f"{where}: cannot read: {e.strerror or type(e).__name__}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ImportFailed(f"{where}: file is too large to be a login file")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ImportFailed(f"{where}: not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        # e.msg / position only: the exception's str() is fine too, but never echo the document.
        raise ImportFailed(f"{where}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None


def _token(where: str, obj: dict[str, Any], key: str, label: str) -> str:
    value = obj.get(key)
    if value is None:
        raise ImportFailed(f"{where}: {label} is missing")
    if not isinstance(value, str) or not value.strip():
        raise ImportFailed(f"{where}: {label} is not a non-empty string")
    return value.strip()


def _check_id_token(where: str, id_token: str, label: str) -> None:
    try:
        decode_jwt_payload(id_token)
    except InvalidJWTError as e:
        raise ImportFailed(f"{where}: {label} is not a valid JWT ({e})") from None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _codex_auth(where: str, data: dict[str, Any]) -> TokenSet:
    """Parse a Codex/ChatMock ``auth.json`` object (codex-protocol.md §5)."""
    mode = data.get("auth_mode")
    tokens = data.get("tokens")
    if mode == "apikey" or (tokens is None and _opt_str(data.get("OPENAI_API_KEY"))):
        raise ImportFailed(
            f"{where}: holds an API key, not a ChatGPT login; codexgw needs a ChatGPT login "
            "(run `codex login` and import again)"
        )
    if tokens is None:
        raise ImportFailed(f"{where}: no ChatGPT tokens (the 'tokens' object is missing)")
    if not isinstance(tokens, dict):
        raise ImportFailed(f"{where}: 'tokens' is not a JSON object")
    id_token = _token(where, tokens, "id_token", "tokens.id_token")
    access_token = _token(where, tokens, "access_token", "tokens.access_token")
    refresh_token = _token(where, tokens, "refresh_token", "tokens.refresh_token")
    _check_id_token(where, id_token, "tokens.id_token")
    return TokenSet(
        id_token=id_token,
        access_token=access_token,
        refresh_token=refresh_token,
        account_id=_opt_str(tokens.get("account_id")),
        api_key=_opt_str(data.get("OPENAI_API_KEY")),
        last_refresh=_last_refresh(data.get("last_refresh")),
    )


def _reverse_accounts(where: str, accounts: Any) -> list[tuple[str | None, TokenSet]]:
    """Parse codex-reverse's ``accounts`` array."""
    if not isinstance(accounts, list):
        raise ImportFailed(f"{where}: 'accounts' is not a JSON array")
    if not accounts:
        raise ImportFailed(f"{where}: 'accounts' is empty")
    out: list[tuple[str | None, TokenSet]] = []
    for i, entry in enumerate(accounts):
        label = f"accounts[{i}]"
        if not isinstance(entry, dict):
            raise ImportFailed(f"{where}: {label} is not a JSON object")
        id_token = _token(where, entry, "id_token", f"{label}.id_token")
        access_token = _token(where, entry, "access_token", f"{label}.access_token")
        refresh_token = _token(where, entry, "refresh_token", f"{label}.refresh_token")
        _check_id_token(where, id_token, f"{label}.id_token")
        name = _opt_str(entry.get("name"))
        tokens = TokenSet(
            id_token=id_token,
            access_token=access_token,
            refresh_token=refresh_token,
            account_id=_opt_str(entry.get("account_id")),
            api_key=_opt_str(entry.get("api_key")),
            last_refresh=_last_refresh(entry.get("last_refresh")),
        )
        out.append((name.strip() if name else None, tokens))
    return out


def load_codex_auth_json(path: Path) -> TokenSet:
    """Read a Codex CLI (or ChatMock) ``auth.json`` (codex-protocol.md §5).

    Args:
        path: the file, e.g. ``~/.codex/auth.json``.

    Returns:
        Its tokens; ``last_refresh`` in epoch seconds (``None`` if absent or unparseable).

    Raises:
        ImportFailed: missing or unreadable file, not JSON, not an object, API-key-only auth,
            missing/empty tokens, or an id_token that is not a JWT. One line, no token.
    """
    path = Path(path).expanduser()
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ImportFailed(f"{path}: expected a JSON object")
    return _codex_auth(str(path), data)


def load_accounts_file(path: Path) -> list[tuple[str | None, TokenSet]]:
    """Read any supported login file and return ``[(suggested_name_or_None, tokens), …]``.

    The importable entries of :func:`read_logins` (entries it skips are left out).

    Raises:
        ImportFailed: as :func:`read_logins`. One line, no token.
    """
    return read_logins(path).items


def read_logins(path: Path, *, passphrase: str | None = None) -> PeerLogins:
    """Read any supported login file (or a CLIProxyAPI directory) and say what it held.

    Detects, in order: a directory of CLIProxyAPI credentials; opencode-multi-auth's encrypted store
    (``passphrase`` opens it); ``accounts`` as an array of camelCase entries (codex-multi-auth's
    ``openai-accounts.json``) or snake_case ones (codex-reverse); ``accounts`` as an object
    (opencode-multi-auth); ``"type": "codex"`` (one CLIProxyAPI credential); a Codex/ChatMock
    ``auth.json`` (``tokens``/``auth_mode``/``OPENAI_API_KEY``).

    Raises:
        ImportFailed: unreadable, not JSON, an unrecognised shape, a broken entry, an encrypted store
            without its passphrase, or no importable login at all. One line, no token.
    """
    path = Path(path).expanduser()
    where = str(path)
    if path.is_dir():
        return _cliproxy_dir(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ImportFailed(f"{where}: expected a JSON object")
    try:
        if data.get("encrypted") is True and "data" in data:
            if not passphrase:
                raise ImportFailed(
                    f"{where}: is an encrypted opencode-multi-auth store; set CODEX_SOFT_STORE_PASSPHRASE"
                )
            data = decrypt_opencode_store(data, passphrase)
            if not isinstance(data, dict):
                raise ImportFailed(f"{where}: the decrypted store is not a JSON object")
        logins = _dispatch(where, data)
    except PeerFileError as e:
        raise ImportFailed(f"{where}: {e}") from None
    if not logins.items:
        reason = logins.skipped[0] if logins.skipped else "no logins in it"
        raise ImportFailed(f"{where}: nothing to import ({reason})")
    return logins


def _dispatch(where: str, data: dict[str, Any]) -> PeerLogins:
    accounts = data.get("accounts")
    if isinstance(accounts, list) and any(
        isinstance(e, dict) and ("refreshToken" in e or "accessToken" in e) for e in accounts
    ):
        return multi_auth_accounts(accounts)
    if "accounts" in data and not isinstance(accounts, dict):
        return PeerLogins(format="codex-reverse accounts.json", items=_reverse_accounts(where, accounts))
    if isinstance(accounts, dict):
        return opencode_accounts(accounts, _last_refresh)
    if data.get("type") == "codex":
        logins = PeerLogins(format="CLIProxyAPI Codex credential")
        result = cliproxy_entry(data, _last_refresh)
        if isinstance(result, str):
            logins.skipped.append(result)
        else:
            logins.items.append((None, result))
        return logins
    if any(k in data for k in ("tokens", "auth_mode", "OPENAI_API_KEY")):
        return PeerLogins(format="Codex auth.json", items=[(None, _codex_auth(where, data))])
    raise ImportFailed(
        f"{where}: not a recognised login file (expected a Codex auth.json with 'tokens', an "
        'accounts.json with \'accounts\', or a CLIProxyAPI credential with "type": "codex")'
    )


def _cliproxy_dir(directory: Path) -> PeerLogins:
    """Every ``*.json`` of a CLIProxyAPI auth directory whose ``type`` is ``codex``."""
    logins = PeerLogins(format="CLIProxyAPI auth directory")
    for path in sorted(directory.glob("*.json")):
        data = _read_json(path)
        if not isinstance(data, dict) or data.get("type") != "codex":
            kind = data.get("type") if isinstance(data, dict) else None
            logins.skipped.append(
                f"{path.name}: not a Codex credential" + (f" (type {kind!r})" if kind else "")
            )
            continue
        try:
            result = cliproxy_entry(data, _last_refresh, label=path.name)
        except PeerFileError as e:
            raise ImportFailed(f"{path}: {e}") from None
        if isinstance(result, str):
            logins.skipped.append(result)
        else:
            logins.items.append((None, result))
    if not logins.items:
        raise ImportFailed(f"{directory}: no CLIProxyAPI Codex credential (codex-*.json) in this directory")
    return logins
