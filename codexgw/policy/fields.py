"""The values a key or a user is made of, checked once for the CLI and the admin API alike.

:func:`key_fields` turns the fields of ``POST``/``PATCH /api/keys`` (or the ``keys create/set``
options, as strings) into store values; :func:`check_name` is the name rule of users, keys and
accounts (as ``store.models.check_name``); :func:`check_role`. A bad value raises
:class:`FieldError` naming the field (the API answers 400 with ``param``; the CLI exits 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codexgw.policy.access import ROLES
from codexgw.policy.durations import parse_expiry
from codexgw.policy.usage import NO_KEY
from codexgw.translate.chat_chunks import REASONING_MODES

__all__ = ["KEY_FIELDS", "MAX_EFFORTS", "FieldError", "check_name", "check_role", "key_fields"]

MAX_NAME_LEN = 64
MAX_EFFORTS = ("low", "medium", "high", "xhigh")
"""The values of ``max_effort`` (teams contract §1)."""
LIMITS = ("rpm", "tpm", "tokens_per_day", "max_streams")
KEY_FIELDS = (
    "name", "owner", "admin", "accounts", "models", *LIMITS, "expires", "reasoning_mode", "max_effort",
)  # fmt: skip
"""What a key is made of (``expires`` becomes ``expires_at``)."""


class FieldError(ValueError):
    """A field's value is wrong: ``param`` names the field, ``str()`` says why in one line."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def check_name(name: Any, *, param: str = "name", what: str = "name") -> str:
    """Return ``name`` if valid: a string of 1-64 characters, no control characters, no ``/``, no
    whitespace at either end.

    Raises:
        FieldError: otherwise.
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise FieldError(param, f"{what} must be a non-empty string without spaces at either end")
    if len(name) > MAX_NAME_LEN:
        raise FieldError(param, f"{what} is longer than {MAX_NAME_LEN} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or "/" in name:
        raise FieldError(param, f"{what} must not contain control characters or '/'")
    return name


def check_role(role: Any) -> str:
    """Return ``role`` if it is ``admin`` or ``member``.

    Raises:
        FieldError: otherwise (param ``role``).
    """
    if role not in ROLES:
        raise FieldError("role", f"role must be one of {', '.join(ROLES)}")
    return str(role)


def _names(param: str, value: Any) -> tuple[str, ...] | None:
    """A list of names (or ``"a,b"``), ``None``/``""`` for none."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list | tuple) or not value:
        raise FieldError(param, f"{param} must be a non-empty list of names, or null")
    names = tuple(dict.fromkeys(check_name(v, param=param, what=f"each of {param}") for v in value))
    return names


def _limit(param: str, value: Any) -> int | None:
    """A positive integer, or ``None``/``0`` for no limit (digits accepted as text)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FieldError(param, f"{param} must be a positive integer, or 0 or null for no limit")
    return value or None


def _choice(param: str, value: Any, choices: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    if value not in choices:
        raise FieldError(param, f"{param} must be one of {', '.join(choices)}, or null")
    return str(value)


def key_fields(data: Mapping[str, Any], *, now: float) -> dict[str, Any]:
    """The store values of the key fields in ``data`` (only those present).

    Returns:
        A dict with any of ``name``, ``owner`` (str or None), ``admin`` (bool), ``accounts`` and
        ``models`` (tuples or None), the limits (int or None), ``expires_at`` (epoch s or None),
        ``reasoning_mode``, ``max_effort`` (str or None).

    Raises:
        FieldError: an unknown field, or a bad value (named in ``param``).
    """
    out: dict[str, Any] = {}
    for param, value in data.items():
        if param == "name":
            out["name"] = check_name(value, what="the key name")
            if value == NO_KEY:
                raise FieldError(
                    "name", f"'{NO_KEY}' is reserved (the usage of requests without a stored key)"
                )
        elif param == "owner":
            out["owner"] = None if value is None else check_name(value, param="owner", what="owner")
        elif param == "admin":
            if not isinstance(value, bool):
                raise FieldError("admin", "admin must be true or false")
            out["admin"] = value
        elif param in ("accounts", "models"):
            out[param] = _names(param, value)
        elif param in LIMITS:
            out[param] = _limit(param, value)
        elif param in ("expires", "expires_at"):
            try:
                out["expires_at"] = None if value is None else parse_expiry(value, now=now)
            except ValueError as exc:
                raise FieldError(param, str(exc)) from None
        elif param == "reasoning_mode":
            out[param] = _choice(param, value, REASONING_MODES)
        elif param == "max_effort":
            out[param] = _choice(param, value, MAX_EFFORTS)
        else:
            raise FieldError(param, f"unknown field '{param}'; a key has {', '.join(KEY_FIELDS)}")
    return out
