"""Where the store's passphrase comes from (encryption at rest, :mod:`codexgw.store.crypto`).

In order, the first that is set wins:

1. ``CODEXGW_STORE_KEY``: the passphrase itself (at least 16 characters);
2. ``CODEXGW_STORE_KEY_FILE``: a file holding it (mode 0600 or stricter; one line, the trailing
   newline is dropped);
3. ``$CREDENTIALS_DIRECTORY/codexgw-store-key``: a systemd credential (``LoadCredential=`` in the
   unit that ``codexgw service install --store-key-file`` writes; systemd makes it readable by the
   service alone).

Every process that opens an encrypted store (the CLI and the server) reads it here. The passphrase
is never printed or logged.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CREDENTIAL_NAME",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "StoreKeyError",
    "passphrase_from_environment",
    "read_key_file",
]

KEY_ENV = "CODEXGW_STORE_KEY"
KEY_FILE_ENV = "CODEXGW_STORE_KEY_FILE"
CREDENTIAL_NAME = "codexgw-store-key"
"""The systemd credential's name (``LoadCredential=codexgw-store-key:/path/to/key``)."""

_MAX_KEY_FILE_BYTES = 4096


class StoreKeyError(Exception):
    """The passphrase's source is unusable; ``str(e)`` is one line (never the passphrase).
    :func:`codexgw.cli.common.open_store` reports it as ``error: …``."""


def read_key_file(path: Path, *, check_mode: bool = True) -> str:
    """The passphrase in ``path`` (first line, without its newline).

    Args:
        path: the key file.
        check_mode: refuse a file that group or others may read (systemd credentials are exempt:
            their directory is private to the service).

    Raises:
        StoreKeyError: missing, unreadable, readable by others, empty, or too large.
    """
    try:
        st = path.stat()
        if check_mode and stat.S_IMODE(st.st_mode) & 0o077:
            raise StoreKeyError(
                f"key file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it"
            )
        with open(path, "rb") as f:
            raw = f.read(_MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise StoreKeyError(f"key file {path} does not exist") from None
    except OSError as e:
        raise StoreKeyError(f"cannot read key file {path}: {e.strerror or e}") from None
    if len(raw) > _MAX_KEY_FILE_BYTES:
        raise StoreKeyError(f"key file {path} is larger than {_MAX_KEY_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StoreKeyError(f"key file {path} is not UTF-8 text") from None
    passphrase = text.split("\n", 1)[0].rstrip("\r")
    if not passphrase:
        raise StoreKeyError(f"key file {path} is empty")
    return passphrase


def passphrase_from_environment(env: Mapping[str, str] | None = None) -> str | None:
    """The store passphrase from the first source set (see the module docstring), or ``None``.

    Raises:
        StoreKeyError: ``CODEXGW_STORE_KEY_FILE`` or the credential is set but unusable.
    """
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        return env[KEY_ENV]
    if env.get(KEY_FILE_ENV):
        return read_key_file(Path(env[KEY_FILE_ENV]).expanduser())
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if credentials:
        path = Path(credentials) / CREDENTIAL_NAME
        if path.exists():
            return read_key_file(path, check_mode=False)
    return None


def key_source(env: Mapping[str, str] | None = None) -> str | None:
    """Which source :func:`passphrase_from_environment` would use (``"CODEXGW_STORE_KEY"`` …), or ``None``."""
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        return KEY_ENV
    if env.get(KEY_FILE_ENV):
        return f"{KEY_FILE_ENV} ({env[KEY_FILE_ENV]})"
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL_NAME).exists():
        return f"systemd credential {CREDENTIAL_NAME}"
    return None
