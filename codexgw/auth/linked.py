"""A Codex CLI ``auth.json`` shared with codexgw (``accounts import PATH --link``; codex-protocol.md §3, §5).

Theory of operation: refresh tokens are single-use (§3), so two programs holding one login must never
both spend the same refresh token. Codex re-reads its ``auth.json`` before every refresh and skips the
refresh when another process already rotated the file; codexgw does the same, and also writes its own
rotations back so Codex finds them:

1. **Lock.** Every read-decide-write runs under an advisory ``fcntl.flock`` on a sidecar
   ``<auth.json>.lock`` (:func:`locked`). Codex itself takes no lock, so the lock only orders codexgw
   processes; the content comparison below is what protects against Codex.
2. **Compare** (:func:`file_is_newer`). When the file's refresh token differs from ours, one side rotated
   since the last sync. The newer side is the one whose access token expires later (a rotation mints a
   new access token); a tie goes to the file. The newer side wins: the file's tokens are adopted into
   the store, or ours are written back to the file.
3. **Write atomically** (:func:`write_auth_json`): a temp file in the same directory, fsync, rename; the
   file keeps its mode (0600 for a new one) and every field codexgw does not own.

A file that is missing, unreadable or now holds a different ChatGPT account is left alone (never
recreated, never overwritten): the caller logs it and refreshes from the store as if unlinked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from codexgw.oauth.jwt import InvalidJWTError, access_token_expiry, identity_from_id_token
from codexgw.store.importers import ImportFailed, load_codex_auth_json
from codexgw.store.models import TokenSet

if TYPE_CHECKING:
    from codexgw.store.models import Account

__all__ = [
    "LinkedFileError",
    "auth_json_document",
    "file_account_id",
    "file_is_newer",
    "locked",
    "read_linked",
    "rfc3339",
    "write_auth_json",
]

LOCK_SUFFIX = ".lock"
LOCK_POLL_S = 0.05
LOCK_TIMEOUT_S = 10.0


class LinkedFileError(Exception):
    """The linked file cannot be used right now; ``str(e)`` is one line naming the file, no token."""


def rfc3339(epoch_s: float) -> str:
    """``2026-04-25T12:34:56.123456Z``: RFC 3339 UTC with a ``Z``, as codex-rs writes ``last_refresh`` (§5)."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.asynccontextmanager
async def locked(path: str | os.PathLike[str], *, timeout_s: float = LOCK_TIMEOUT_S) -> AsyncIterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` (created 0600) for the body.

    Polls a non-blocking lock every 50 ms so the wait stays cancellable.

    Raises:
        LinkedFileError: the lock file cannot be created, or another holder kept it ``timeout_s`` seconds.
    """
    lock_path = f"{os.fspath(path)}{LOCK_SUFFIX}"
    try:
        fd = await trio.to_thread.run_sync(lambda: os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as e:
        raise LinkedFileError(f"{lock_path}: cannot open lock file: {e.strerror or e}") from None
    try:
        with trio.move_on_after(timeout_s) as scope:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise LinkedFileError(f"{lock_path}: cannot lock: {e.strerror or e}") from None
                await trio.sleep(LOCK_POLL_S)
        if scope.cancelled_caught:
            raise LinkedFileError(f"{lock_path}: still locked by another codexgw after {timeout_s:.0f} s")
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the flock


def file_account_id(tokens: TokenSet) -> str | None:
    """The ChatGPT account a file's tokens belong to: the id_token's ``chatgpt_account_id`` (§4), else
    ``tokens.account_id``."""
    try:
        claims = identity_from_id_token(tokens.id_token)
    except InvalidJWTError:
        return tokens.account_id
    return claims.chatgpt_account_id or tokens.account_id


def read_linked(path: str | os.PathLike[str], account: Account) -> TokenSet:
    """Read the linked ``auth.json`` and check it still holds ``account``'s login (blocking I/O).

    Raises:
        LinkedFileError: missing, unreadable, not a ChatGPT login, or another ChatGPT account.
    """
    try:
        tokens = load_codex_auth_json(Path(path))
    except ImportFailed as e:
        raise LinkedFileError(str(e)) from None
    if file_account_id(tokens) != account.chatgpt_account_id:
        raise LinkedFileError(f"{os.fspath(path)}: now holds another ChatGPT account; not syncing it")
    return tokens


def file_is_newer(tokens: TokenSet, account: Account) -> bool:
    """True when the file's login is a later rotation than the stored one (see the module docstring).

    Equal refresh tokens mean nothing happened: False. Otherwise the later access-token ``exp`` wins
    and a tie goes to the file (a rotation never yields an earlier ``exp``; only a write-back that
    failed leaves the file strictly older). ``last_refresh`` decides only when an ``exp`` is unknown.
    """
    if tokens.refresh_token == account.refresh_token:
        return False
    theirs_exp = access_token_expiry(tokens.access_token)
    if theirs_exp is not None and account.access_expires_at is not None:
        return theirs_exp >= account.access_expires_at
    return (tokens.last_refresh or float("-inf")) >= (account.last_refresh or float("-inf"))


def auth_json_document(account: Account, *, now: float, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Codex CLI ``auth.json`` for ``account`` (§5), on top of ``base`` (unknown fields kept).

    Shape: ``{"auth_mode": "chatgpt", "OPENAI_API_KEY": str | None, "tokens": {"id_token",
    "access_token", "refresh_token", "account_id"}, "last_refresh": RFC 3339 Z, …base's other keys}``.
    ``auth_mode`` is always ``"chatgpt"`` (a missing one plus an API key reads as API-key auth, §5);
    ``OPENAI_API_KEY`` is ours if we have one, else ``base``'s, else ``null``.
    """
    doc = dict(base or {})
    old_tokens = doc.get("tokens") if isinstance(doc.get("tokens"), dict) else {}
    doc["auth_mode"] = "chatgpt"
    doc["OPENAI_API_KEY"] = account.api_key or doc.get("OPENAI_API_KEY")
    doc["tokens"] = {
        **old_tokens,
        "id_token": account.id_token,
        "access_token": account.access_token,
        "refresh_token": account.refresh_token,
        "account_id": account.chatgpt_account_id,
    }
    doc["last_refresh"] = rfc3339(account.last_refresh if account.last_refresh is not None else now)
    return doc


def write_auth_json(
    path: str | os.PathLike[str], account: Account, *, now: float, keep_fields: bool = True
) -> Path:
    """Atomically write ``account`` as a Codex ``auth.json`` at ``path`` (blocking I/O; §5).

    Temp file in the same directory (created 0600), fsync, ``os.replace``. An existing file keeps its
    mode and, with ``keep_fields``, every field codexgw does not set. The parent directory is created
    0700 when missing.

    Raises:
        LinkedFileError: the directory or file cannot be written.
    """
    target = Path(path).expanduser()
    base: dict[str, Any] | None = None
    mode = 0o600
    try:
        st = target.stat()
        mode = stat.S_IMODE(st.st_mode)
        if keep_fields:
            with open(target, "rb") as f:
                loaded = json.loads(f.read().decode("utf-8-sig"))
            base = loaded if isinstance(loaded, dict) else None
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        base = None  # unreadable or not JSON: replace it whole
    doc = auth_json_document(account, now=now, base=base)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise LinkedFileError(f"{target}: cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise LinkedFileError(f"{target}: cannot write: {e.strerror or e}") from None
    return target
