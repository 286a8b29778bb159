"""Encryption at rest for the store: AES-256-GCM column values under a passphrase-derived key.

Theory of operation:

* **Key.** A passphrase of at least :data:`MIN_PASSPHRASE_CHARS` characters is stretched with scrypt
  (``N=2**15, r=8, p=1``, 32 bytes) and a random 16-byte salt kept in the store (``store_key``, a
  one-row table of migration step 4, with the scrypt parameters). The same row holds a *check value*
  (a known text encrypted under the key), so a wrong passphrase is refused at open, before anything
  is read or written.
* **Values.** Each secret column value (``accounts.id_token``, ``access_token``, ``refresh_token``,
  ``api_key``; ``responses.db``'s ``input`` and ``output``, which hold conversation content) is stored as
  ``enc1:`` + base64(12-byte random nonce ‖ ciphertext ‖ 16-byte tag). The associated data is the
  column's name (``accounts.refresh_token``), so a value moved to another column does not decrypt.
* **Library.** AES-GCM comes from the optional ``cryptography`` package (compiled, so not in the
  zipapp): ``pip install cryptography`` or Debian's ``python3-cryptography``. An unencrypted store
  never imports it. scrypt is the standard library's (``hashlib.scrypt``).

Errors are :class:`~codexgw.store.models.StoreError` lines that never hold the passphrase or a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from codexgw.store.models import SECRET_COLUMNS, StoreError

__all__ = [
    "ACCOUNT_SECRET_COLUMNS",
    "MIN_PASSPHRASE_CHARS",
    "PREFIX",
    "Cipher",
    "KeyRecord",
    "Opener",
    "is_encrypted",
    "new_key_record",
    "open_key",
]

MIN_PASSPHRASE_CHARS = 16
PREFIX = "enc1:"
"""What every encrypted column value starts with."""
ACCOUNT_SECRET_COLUMNS = SECRET_COLUMNS
"""The ``accounts`` columns stored encrypted."""

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 128 * 1024 * 1024
_CHECK_TEXT = "codexgw store key check"
_CHECK_AAD = "store_key.check_value"
_NONCE_BYTES = 12

NEEDS_CRYPTOGRAPHY = (
    "the store's encryption needs the cryptography package: pip install cryptography "
    "(Debian: apt install python3-cryptography, and run codexgw.pyz with /usr/bin/python3)"
)


def _aesgcm(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise StoreError(NEEDS_CRYPTOGRAPHY) from None
    return AESGCM(key)


def crypto_available() -> bool:
    """Whether the optional ``cryptography`` package can be imported."""
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
    except ImportError:
        return False
    return True


def is_encrypted(value: Any) -> bool:
    """True for a column value this module wrote."""
    return isinstance(value, str) and value.startswith(PREFIX)


class Cipher:
    """Encrypts and decrypts column values with one 32-byte AES-256-GCM key.

    Raises (both methods):
        StoreError: ``cryptography`` is missing; on decrypt, a value that is damaged, was written
            under another key, or belongs to another column.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("AES-256 needs a 32-byte key")
        self._aead = _aesgcm(key)

    def __repr__(self) -> str:
        return "Cipher(<AES-256-GCM key hidden>)"

    def encrypt(self, text: str, column: str) -> str:
        """``enc1:…`` for ``text``, bound to ``column`` (``"accounts.refresh_token"``)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, text.encode("utf-8"), column.encode("ascii"))
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, value: str, column: str) -> str:
        """The text inside an ``enc1:…`` value of ``column``."""
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(value[len(PREFIX) :], validate=True)
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], column.encode("ascii"))
            return plain.decode("utf-8")
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            raise StoreError(f"a stored {column} value does not decrypt under this key (damaged?)") from None


NO_KEY = "the store is encrypted; set CODEXGW_STORE_KEY (or CODEXGW_STORE_KEY_FILE, or a systemd credential)"


@dataclass(frozen=True)
class Opener:
    """Reads and writes secret column values with the store's cipher, or as they are without one.

    Attributes:
        cipher: the store's :class:`Cipher`, ``None`` for an unencrypted store.
    """

    cipher: Cipher | None = None

    def __call__(self, value: Any, column: str) -> Any:
        """A stored value as the program uses it: decrypted when it is ``enc1:…``.

        Raises:
            StoreError: the value is encrypted and there is no cipher, or it does not decrypt.
        """
        if not is_encrypted(value):
            return value
        if self.cipher is None:
            raise StoreError(NO_KEY)
        return self.cipher.decrypt(value, column)

    def seal(self, value: str | None, column: str) -> str | None:
        """A value as it is stored: encrypted when there is a cipher (``None`` stays ``None``)."""
        return value if self.cipher is None or value is None else self.cipher.encrypt(value, column)


@dataclass(frozen=True)
class KeyRecord:
    """The ``store_key`` row: how to derive the key and how to check it (no secret in it).

    Attributes:
        salt: 16 random bytes.
        n, r, p: scrypt's cost parameters.
        check_value: ``enc1:…`` of a known text under the key.
    """

    salt: bytes
    n: int
    r: int
    p: int
    check_value: str


def derive_key(
    passphrase: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P
) -> bytes:
    """scrypt(passphrase, salt) → 32 bytes (about 0.1 s and 32 MiB with the default cost)."""
    return hashlib.scrypt(
        passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32
    )


def new_key_record(passphrase: str, *, n: int = SCRYPT_N) -> tuple[KeyRecord, Cipher]:
    """A fresh salt and check value for ``passphrase``, and the cipher it gives.

    Raises:
        StoreError: the passphrase is shorter than :data:`MIN_PASSPHRASE_CHARS`, or ``cryptography``
            is missing.
    """
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise StoreError(f"the store passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")
    salt = os.urandom(16)
    cipher = Cipher(derive_key(passphrase, salt, n))
    record = KeyRecord(
        salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, check_value=cipher.encrypt(_CHECK_TEXT, _CHECK_AAD)
    )
    return record, cipher


def open_key(record: KeyRecord, passphrase: str, *, where: str) -> Cipher:
    """The cipher for ``passphrase`` if it is the store's.

    Raises:
        StoreError: wrong passphrase (``where`` names the store), or ``cryptography`` is missing.
    """
    cipher = Cipher(derive_key(passphrase, record.salt, record.n, record.r, record.p))
    try:
        ok = cipher.decrypt(record.check_value, _CHECK_AAD) == _CHECK_TEXT
    except StoreError:
        ok = False
    if not ok:
        raise StoreError(f"wrong store key for {where}: CODEXGW_STORE_KEY (or the key file) does not open it")
    return cipher
