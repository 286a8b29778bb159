"""User passwords: ``hashlib.scrypt`` with a per-user salt, the parameters stored with the hash.

Teams contract §1: n=2**14, r=8, p=1, dklen=32, a 16-byte salt; stored as
``scrypt$n$r$p$salt_b64$hash_b64`` (standard base64) so the parameters can change later. Hashing
takes ~50 ms of CPU and 16 MiB by design: the shell runs it in a worker thread. The salt is drawn
by the caller (``secrets.token_bytes(16)``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["MIN_PASSWORD_LEN", "check_password", "hash_password", "verify_password"]

N, R, P, DKLEN = 2**14, 8, 1, 32
MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 1024
_MAXMEM = 64 * 1024 * 1024


def check_password(password: str) -> str:
    """Return ``password`` if it is acceptable: 8 to 1024 characters, not only whitespace.

    Raises:
        ValueError: otherwise (one line, never the password).
    """
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LEN or not password.strip():
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LEN} characters")
    if len(password) > MAX_PASSWORD_LEN:
        raise ValueError(f"the password must have at most {MAX_PASSWORD_LEN} characters")
    return password


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_MAXMEM)


def hash_password(password: str, *, salt: bytes) -> str:
    """The stored form of ``password`` with ``salt`` (16 random bytes): ``scrypt$n$r$p$salt$hash``."""
    digest = _scrypt(password, salt, N, R, P, DKLEN)
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (constant-time compare); False for any malformed
    ``stored`` (never raises)."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        digest = _scrypt(password, salt, int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(digest, expected)
