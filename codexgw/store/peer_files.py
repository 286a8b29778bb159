"""Login files of other multi-account tools, read into :class:`~codexgw.store.models.TokenSet`\\ s.

Shapes accepted (as documented by each tool's source; every field not named here is ignored):

* **codex-multi-auth / codex-app-account-router** ``~/.codex/multi-auth/openai-accounts.json``
  (also the opencode plugins' ``openai-accounts.json``): ``{"version": N, "accounts": [{
  "refreshToken", "accessToken", "idToken"?, "accountId"?, "email"?, "accountLabel"?, "enabled"?,
  "expiresAt"? (ms)}, …], "activeIndex"}``: a JSON array of camelCase entries.
* **opencode-multi-auth** ``~/.config/opencode-multi-auth/accounts.json``: ``{"accounts": {"<alias>":
  {"alias", "accessToken", "refreshToken", "idToken"?, "accountId"?, "email"?, "lastRefresh"?}},
  "activeAlias"}``: an object keyed by alias. Its encrypted form ``{"encrypted": true, "salt", "iv",
  "tag", "data"}`` (base64; AES-256-GCM under ``scrypt(passphrase, salt, N=16384, r=8, p=1)``,
  its ``CODEX_SOFT_STORE_PASSPHRASE``) is decrypted when a passphrase is given and the optional
  ``cryptography`` package is installed.
* **CLIProxyAPI** Codex credential files (``~/.cli-proxy-api/codex-<email>….json``): ``{"type":
  "codex", "id_token", "access_token", "refresh_token", "account_id", "email", "last_refresh"
  (RFC 3339), "expired"}``; a directory of them is read file by file.

**No id_token.** Several of these keep only the access and refresh tokens. The access token is a
JWT carrying the same ``https://api.openai.com/auth`` claims (codex-protocol.md §4), so it stands in
for the id_token until the first refresh stores a real one. An entry with no access token cannot be
identified without spending its single-use refresh token, so it is skipped and reported.

Every failure is one :class:`~codexgw.store.importers.ImportFailed` line naming the file and the
entry; no message holds a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from codexgw.oauth.jwt import InvalidJWTError, decode_jwt_payload
from codexgw.store.models import TokenSet

__all__ = ["PeerLogins", "cliproxy_entry", "multi_auth_accounts", "opencode_accounts"]


class PeerFileError(Exception):
    """An entry or file cannot be read; ``str(e)`` is the problem (the caller adds the file name)."""


@dataclass
class PeerLogins:
    """What a peer's file holds.

    Attributes:
        format: a human name of the format (``"codex-multi-auth openai-accounts.json"`` …).
        items: ``(suggested name or None, tokens)`` per importable entry.
        skipped: one line per entry left out, and why.
    """

    format: str
    items: list[tuple[str | None, TokenSet]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _text(entry: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _is_jwt(token: str) -> bool:
    try:
        decode_jwt_payload(token)
    except InvalidJWTError:
        return False
    return True


def _tokens(label: str, entry: dict[str, Any], *, last_refresh: float | None) -> TokenSet | str:
    """The entry's tokens, or the reason it is skipped."""
    refresh = _text(entry, "refreshToken", "refresh_token", "refresh")
    access = _text(entry, "accessToken", "access_token", "access")
    id_token = _text(entry, "idToken", "id_token")
    if refresh is None:
        return f"{label}: no refresh token"
    if access is None and id_token is None:
        return f"{label}: no access token or id_token to tell the account by; log it in with codexgw login device"
    if id_token is not None and not _is_jwt(id_token):
        key = "idToken" if "idToken" in entry else "id_token"
        raise PeerFileError(f"{label}.{key} is not a valid JWT")
    if id_token is None:
        assert access is not None
        if not _is_jwt(access):
            return f"{label}: the access token is not a JWT, so the account cannot be identified; log it in again"
        id_token = access  # same claims namespace (codex-protocol.md §4); the next refresh brings one
    return TokenSet(
        id_token=id_token,
        access_token=access or id_token,
        refresh_token=refresh,
        account_id=_text(entry, "accountId", "account_id", "chatgpt_account_id"),
        last_refresh=last_refresh,
    )


def _name(entry: dict[str, Any], *keys: str) -> str | None:
    name = _text(entry, *keys)
    if name is None or len(name) > 64 or any(ord(c) < 32 for c in name):
        return None
    return name


def _add(logins: PeerLogins, name: str | None, result: TokenSet | str) -> None:
    if isinstance(result, str):
        logins.skipped.append(result)
    else:
        logins.items.append((name, result))


def multi_auth_accounts(accounts: list[Any]) -> PeerLogins:
    """codex-multi-auth / codex-app-account-router ``openai-accounts.json`` ``accounts`` array.

    Raises:
        PeerFileError: an entry is not an object, or has an id_token that is not a JWT.
    """
    logins = PeerLogins(format="codex-multi-auth openai-accounts.json")
    for i, entry in enumerate(accounts):
        label = f"accounts[{i}]"
        if not isinstance(entry, dict):
            raise PeerFileError(f"{label} is not a JSON object")
        _add(logins, _name(entry, "accountLabel", "label", "name"), _tokens(label, entry, last_refresh=None))
    return logins


def opencode_accounts(accounts: dict[str, Any], parse_time: Any) -> PeerLogins:
    """opencode-multi-auth ``accounts.json``: ``accounts`` keyed by alias.

    Raises:
        PeerFileError: an entry is not an object, or has an id_token that is not a JWT.
    """
    logins = PeerLogins(format="opencode-multi-auth accounts.json")
    for alias, entry in accounts.items():
        label = f"accounts.{alias}"
        if not isinstance(entry, dict):
            raise PeerFileError(f"{label} is not a JSON object")
        last = parse_time(entry.get("lastRefresh"))
        _add(logins, _name({"alias": alias, **entry}, "alias"), _tokens(label, entry, last_refresh=last))
    return logins


def cliproxy_entry(data: dict[str, Any], parse_time: Any, label: str = "file") -> TokenSet | str:
    """One CLIProxyAPI Codex credential (``"type": "codex"``): its tokens, or why it is skipped.

    Raises:
        PeerFileError: the id_token is not a JWT.
    """
    return _tokens(label, data, last_refresh=parse_time(data.get("last_refresh")))


def decrypt_opencode_store(doc: dict[str, Any], passphrase: str) -> Any:
    """The JSON inside opencode-multi-auth's encrypted store (AES-256-GCM, key = scrypt(passphrase,
    salt, N=16384, r=8, p=1, 32 bytes): Node's ``scryptSync`` defaults).

    Raises:
        PeerFileError: ``cryptography`` is missing, a field is not base64, or the passphrase is wrong.
    """
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise PeerFileError(
            "is encrypted, and decrypting it needs the cryptography package (pip install cryptography)"
        ) from None
    try:
        salt, iv, tag, data = (
            base64.b64decode(str(doc[k]), validate=True) for k in ("salt", "iv", "tag", "data")
        )
    except (KeyError, binascii.Error, ValueError):
        raise PeerFileError("is an encrypted store with a missing or broken salt/iv/tag/data field") from None
    key = hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=16384, r=8, p=1, dklen=32)
    try:
        plain = AESGCM(key).decrypt(iv, data + tag, None)
    except (InvalidTag, ValueError):
        raise PeerFileError("cannot be decrypted: wrong passphrase (CODEX_SOFT_STORE_PASSPHRASE)") from None
    try:
        return json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PeerFileError("decrypted to something that is not JSON") from None
