"""``config.toml``: where it lives, reading it, and the line a key sits on.

The file (``~/.config/codexgw/config.toml``, or ``--config``/``CODEXGW_CONFIG``) holds three tables::

    [serve]                 # every `codexgw serve` option, named as the long option with underscores
    port = 8080
    api_key = "..."

    [models.aliases]        # name = "target"
    fast = "gpt-5.4-mini-low"

    [notify]                # see codexgw.config.NotifySettings
    url = "https://ntfy.sh/my-topic"

It is read with ``tomllib``, which gives no line numbers; :func:`line_of` finds a key's line by
scanning the text for it inside its table (a header ``[serve]``, or a dotted key ``serve.port`` at
the top, or an inline table), so every error can name the file and the line. The checking of keys
and types is :mod:`codexgw.cli.settings`'s; this module only reads.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codexgw.cli.common import CliError

__all__ = ["ConfigFile", "ConfigFileError", "default_config_path", "line_of", "read_config_file"]

CONFIG_ENV = "CODEXGW_CONFIG"
"""The environment variable naming the config file (``--config`` wins over it)."""

_MAX_BYTES = 1024 * 1024
_HEADER = re.compile(r"^\s*\[\s*(?P<path>[^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*(?P<key>(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


class ConfigFileError(CliError):
    """The config file cannot be used; one line naming the file (and the line, when known)."""


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/codexgw/config.toml`` (``~/.config/codexgw/config.toml``) on Linux, the
    platform's user config directory elsewhere (platformdirs)."""
    from platformdirs import user_config_path

    return user_config_path("codexgw", appauthor=False) / "config.toml"


@dataclass(frozen=True)
class ConfigFile:
    """A parsed config file.

    Attributes:
        path: where it was read from.
        data: what ``tomllib`` made of it (``{}`` for a missing default file).
        text: the file's text ('' when missing), for :func:`line_of`.
        exists: False when the default file is absent (not an error).
    """

    path: Path
    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    exists: bool = True

    def where(self, *keys: str) -> str:
        """``"/path/config.toml:12"`` for the line holding ``keys`` (``serve``, ``port``), or the path."""
        line = line_of(self.text, list(keys))
        return f"{self.path}:{line}" if line else str(self.path)


def read_config_file(path: Path | None, *, explicit: bool) -> ConfigFile:
    """Read the config file at ``path`` (the default path when ``None``).

    Args:
        path: the file, or ``None`` for :func:`default_config_path`.
        explicit: the user named it (``--config`` or ``CODEXGW_CONFIG``): then a missing file is an
            error; a missing default file is an empty config.

    Raises:
        ConfigFileError: unreadable, too large, not UTF-8, or not valid TOML (with the line).
    """
    path = (path or default_config_path()).expanduser()
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        if explicit:
            raise ConfigFileError(f"config file {path} does not exist") from None
        return ConfigFile(path=path, exists=False)
    except IsADirectoryError:
        raise ConfigFileError(f"config file {path} is a directory") from None
    except OSError as e:
        raise ConfigFileError(f"cannot read config file {path}: {e.strerror or e}") from None
    if len(raw) > _MAX_BYTES:
        raise ConfigFileError(f"config file {path} is larger than 1 MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigFileError(f"config file {path} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib's message ends with "(at line N, column M)"; keep it, it names the place.
        raise ConfigFileError(f"{path}: not valid TOML: {e}") from None
    return ConfigFile(path=path, data=data, text=text)


def config_path_from(option: Path | None, env: dict[str, str] | os._Environ[str]) -> tuple[Path, bool]:
    """``(path, explicit)``: ``--config`` wins over ``CODEXGW_CONFIG``, which wins over the default."""
    if option is not None:
        return option.expanduser(), True
    value = env.get(CONFIG_ENV)
    if value:
        return Path(value).expanduser(), True
    return default_config_path(), False


def _split(dotted: str) -> list[str]:
    parts = re.findall(r"""\s*("[^"]*"|'[^']*'|[^.\s]+)\s*(?:\.|$)""", dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def line_of(text: str, keys: list[str]) -> int | None:
    """The 1-based line where the dotted key ``keys`` (``["serve", "port"]``) is defined, or the line
    of its table's header when ``keys`` names a table; ``None`` when not found.

    Understands ``[table]`` headers, dotted keys (``serve.port = 1`` at the top, ``aliases.x = ""``
    under ``[models]``) and, for a key inside an inline table, the line of the inline table's key.
    Multi-line strings are skipped so their contents are never taken for keys.
    """
    table: list[str] = []
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is None:
            header = (
                _HEADER.match(line)
                if line.lstrip().startswith("[") and not line.lstrip().startswith("[[")
                else None
            )
            if header:
                table = _split(header["path"])
                if table == keys:
                    return number
            elif match := _KEY.match(line):
                full = table + _split(match["key"])
                if full == keys or (len(full) < len(keys) and keys[: len(full)] == full):
                    return number
                if len(full) > len(keys) and full[: len(keys)] == keys:
                    return number  # a dotted key inside the table we look for
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 and in_string in (None, quote):
                in_string = None if in_string == quote else quote
    return None
