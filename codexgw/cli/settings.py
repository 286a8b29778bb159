"""From flags, the environment and ``config.toml`` to :class:`~codexgw.config.Settings`, with sources.

Precedence, per value: a flag given on the command line > its ``CODEXGW_*`` variable > the config
file (:mod:`codexgw.cli.config_file`) > the default. :data:`OPTIONS` is the one list of settings a
user can set: each entry is a ``serve`` flag (``[serve]`` table) or a ``[notify]`` key, with its
environment variable, type, default and help, so the click options, the file's checks, the
environment's parsing and ``codexgw config show`` cannot disagree. ``[models.aliases]`` is a free
table of ``name = "target"`` strings.

:func:`resolve` is pure (flags, environment and file in; values and their sources out) and raises
:class:`SettingsError` naming the key, the file and the line, or the variable. The shell part is
:func:`load_settings` (reads ``os.environ`` and the file); the click options are
:func:`codexgw.cli.options.serve_options`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from codexgw import config
from codexgw.cli.common import CliError
from codexgw.cli.config_file import ConfigFile, config_path_from, read_config_file
from codexgw.pool.strategies import STRATEGY_NAMES
from codexgw.translate.chat_stream import REASONING_MODES
from codexgw.translate.model_names import check_alias

__all__ = [
    "NOTIFY_OPTIONS",
    "OPTIONS",
    "SERVE_OPTIONS",
    "Option",
    "Resolved",
    "SettingsError",
    "load_settings",
    "resolve",
    "settings_from",
]


class SettingsError(CliError):
    """A setting has a wrong name, type or value; one line naming the key and where it came from."""


@dataclass(frozen=True)
class Option:
    """One setting a user can set.

    Attributes:
        table: ``serve`` (also a ``serve`` flag) or ``notify``.
        name: the key in its table, and (``serve``) the long flag with ``-`` for ``_``.
        kind: ``str``, ``int``, ``float``, ``bool`` or ``list`` (of strings: a repeatable flag, a TOML
            array, a comma-separated variable).
        default: used when nothing sets it (``None``: unset).
        help: one line for ``--help``.
        choices: allowed values (strings), if restricted.
        low, high: inclusive bounds for numbers.
        secret: redacted by ``config show``.
        path: a file that must exist (TLS files).
    """

    table: str
    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    secret: bool = False
    path: bool = False
    int_ok: bool = False
    """A string setting that a TOML file may also write as an integer (``workers = 2``)."""

    @property
    def key(self) -> str:
        """``serve.port``: the dotted key, as ``config show`` prints it."""
        return f"{self.table}.{self.name}"

    @property
    def env(self) -> str:
        """``CODEXGW_PORT`` for ``[serve]`` keys, ``CODEXGW_NOTIFY_URL`` for ``[notify]`` ones."""
        prefix = "CODEXGW_" if self.table == "serve" else f"CODEXGW_{self.table.upper()}_"
        return prefix + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SERVE_OPTIONS: tuple[Option, ...] = (
    Option("serve", "host", str, "127.0.0.1", "Address to listen on."),
    Option("serve", "port", int, 8080, "Port (0 = any).", low=0, high=65535),
    Option("serve", "upstream", str, config.DEFAULT_UPSTREAM, "Codex backend base URL."),
    Option("serve", "auth_url", str, config.DEFAULT_AUTH_URL, "OAuth issuer URL."),
    Option("serve", "retries", int, 3, "Max failovers per request.", low=0),
    Option(
        "serve", "api_key", str, None, "Key clients must send as a Bearer token; required off loopback.",
        secret=True,
    ),
    Option("serve", "certfile", str, None, "TLS certificate (PEM).", path=True),
    Option("serve", "keyfile", str, None, "TLS private key (PEM).", path=True),
    Option("serve", "log_format", str, "text", "Log line format.", choices=("text", "json")),
    Option("serve", "log_level", str, "info", "Least severe log level shown.", choices=config.LOG_LEVELS),
    Option(
        "serve", "reasoning_mode", str, "content", "How Chat Completions show reasoning by default.",
        choices=tuple(REASONING_MODES),
    ),
    Option(
        "serve", "strategy", str, None,
        "Pool strategy; saved in the store (change it later with `accounts strategy`) "
        "[default: the stored one, else round-robin].",
        choices=tuple(STRATEGY_NAMES),
    ),
    Option(
        "serve", "probe_interval", float, 300.0,
        "Seconds between /wham/usage quota probes of each account (0 = never).", low=0,
    ),
    Option("serve", "dashboard", bool, True, "Serve the web dashboard at / and /dashboard."),
    Option(
        "serve", "keepalive_after", float, 10.0,
        "Seconds without output before a stream gets its headers and SSE comments while failover "
        "goes on (0 = never: the client waits in silence).", low=0,
    ),
    Option(
        "serve", "max_body_bytes", int, config.DEFAULT_MAX_BODY_BYTES,
        "Largest request body or WebSocket message, as sent and once decompressed (bytes; 413 beyond).",
        low=1024,
    ),
    Option(
        "serve", "server_name", list, (),
        "Host name clients use to reach the gateway, besides localhost and IP addresses (repeatable; "
        ".example.com: its subdomains too; *: any Host, e.g. behind a proxy that checks it).",
    ),
    Option(
        "serve", "allow_origin", list, (),
        "Browser origin allowed to call the gateway cross-site, with CORS (repeatable; e.g. "
        "https://chat.example.com; *: any page, only with an API key).",
    ),
    Option(
        "serve", "coalesce_ms", float, 0.0,
        "Milliseconds a streamed event may wait for more to share its write (0 = none).", low=0, high=1000,
    ),
    Option(
        "serve", "workers", str, "1",
        "Worker processes serving the port together (SO_REUSEPORT), or auto (one per CPU).",
        int_ok=True,
    ),
    Option(
        "serve", "grace", float, 30.0,
        "On SIGTERM/SIGINT, seconds open requests may finish before they are cut with an in-band "
        "error (new ones get 503 draining meanwhile; a second signal cuts at once).", low=0,
    ),
)  # fmt: skip
"""Every ``serve`` option, in ``--help`` order."""

NOTIFY_OPTIONS: tuple[Option, ...] = (
    Option("notify", "url", str, None, "ntfy topic URL or JSON webhook URL."),
    Option("notify", "format", str, "auto", "Message format.", choices=("auto", "ntfy", "json")),
    Option("notify", "interval", float, 3600.0, "Seconds between two notices of one kind per account.", low=0),
    Option("notify", "low", float, 20.0, "Warn when a quota window has this many percent left.", low=0, high=100),
    Option("notify", "critical", float, 5.0, "Alert when a quota window has this many percent left.", low=0, high=100),
)  # fmt: skip
"""The ``[notify]`` keys (see :class:`codexgw.config.NotifySettings`)."""

OPTIONS: tuple[Option, ...] = SERVE_OPTIONS + NOTIFY_OPTIONS
ALIASES_TABLE = ("models", "aliases")

_TYPE_NAMES = {
    str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "an array of strings",
}  # fmt: skip
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Resolved:
    """Effective settings and where each came from.

    Attributes:
        values: dotted key (``serve.port``, ``notify.url``) → value, for every :data:`OPTIONS` entry.
        sources: dotted key → ``"flag --port"``, ``"env CODEXGW_PORT"``, ``"file PATH:LINE"`` or
            ``"default"``.
        aliases: the ``[models.aliases]`` table (may be empty).
        alias_sources: alias name → ``"file PATH:LINE"``.
    """

    values: dict[str, Any]
    sources: dict[str, str]
    aliases: dict[str, str]
    alias_sources: dict[str, str]

    def serve(self, name: str) -> Any:
        return self.values[f"serve.{name}"]

    def notify(self, name: str) -> Any:
        return self.values[f"notify.{name}"]


def _kind_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def check_value(option: Option, value: Any, where: str) -> Any:
    """``value`` (from TOML or already converted from the environment) if it fits ``option``.

    Raises:
        SettingsError: ``"<where>: serve.port must be an integer, not a string"`` and the like.
    """
    if option.int_ok and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if option.kind is bool:
        ok = isinstance(value, bool)
    elif option.kind is list:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    elif isinstance(value, bool):
        ok = False
    else:
        ok = isinstance(value, option.kind) or (option.kind is float and isinstance(value, int))
    if not ok:
        raise SettingsError(
            f"{where}: {option.key} must be {_TYPE_NAMES[option.kind]}, not {_kind_name(value)}"
        )
    if option.kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise SettingsError(f"{where}: {option.key} must be a finite number")
    if option.choices is not None and value not in option.choices:
        raise SettingsError(
            f"{where}: {option.key} must be one of {', '.join(option.choices)}, not {value!r}"
        )
    if option.low is not None and value < option.low:
        raise SettingsError(f"{where}: {option.key} must be at least {option.low:g}")
    if option.high is not None and value > option.high:
        raise SettingsError(f"{where}: {option.key} must be at most {option.high:g}")
    return value


def parse_env(option: Option, text: str) -> Any:
    """Convert an environment variable's text for ``option``.

    Raises:
        SettingsError: ``"CODEXGW_PORT='abc' is not an integer"`` and the like.
    """
    where = f"{option.env}={text!r}"
    value: Any = text
    try:
        if option.kind is int:
            value = int(text.strip())
        elif option.kind is float:
            value = float(text.strip())
        elif option.kind is list:
            value = tuple(part.strip() for part in text.split(",") if part.strip())
        elif option.kind is bool:
            lowered = text.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError
            value = lowered in _TRUE
    except ValueError:
        raise SettingsError(f"{where} is not {_TYPE_NAMES[option.kind]}") from None
    return check_value(option, value, f"environment {option.env}")


def _file_values(file: ConfigFile) -> tuple[dict[str, tuple[Any, str]], dict[str, tuple[str, str]]]:
    """Check the file's tables and keys; ``({dotted key: (value, where)}, {alias: (target, where)})``."""
    known = {(o.table, o.name): o for o in OPTIONS}
    values: dict[str, tuple[Any, str]] = {}
    aliases: dict[str, tuple[str, str]] = {}
    for table, body in file.data.items():
        if table not in ("serve", "notify", "models"):
            raise SettingsError(
                f"{file.where(table)}: unknown table or key '{table}' (known: [serve], [models.aliases], [notify])"
            )
        if not isinstance(body, dict):
            raise SettingsError(f"{file.where(table)}: '{table}' must be a table, not {_kind_name(body)}")
        if table == "models":
            for key, sub in body.items():
                if key != "aliases":
                    raise SettingsError(
                        f"{file.where('models', key)}: unknown key 'models.{key}' (known: models.aliases)"
                    )
                if not isinstance(sub, dict):
                    raise SettingsError(f"{file.where('models', key)}: models.aliases must be a table")
                for name, target in sub.items():
                    where = file.where("models", "aliases", name)
                    if not isinstance(target, str):
                        raise SettingsError(
                            f"{where}: models.aliases.{name} must be a string (the target model), not {_kind_name(target)}"
                        )
                    problem = check_alias(name, target)
                    if problem:
                        raise SettingsError(f"{where}: models.aliases.{name}: {problem}")
                    aliases[name] = (target, where)
            continue
        for key, value in body.items():
            option = known.get((table, key))
            where = file.where(table, key)
            if option is None:
                names = ", ".join(o.name for o in OPTIONS if o.table == table)
                raise SettingsError(f"{where}: unknown key '{table}.{key}' (known: {names})")
            values[option.key] = (check_value(option, value, where), where)
    return values, aliases


def resolve(flags: Mapping[str, Any], env: Mapping[str, str], file: ConfigFile) -> Resolved:
    """Merge the four sources (flags > env > file > defaults) for every entry of :data:`OPTIONS`.

    Args:
        flags: dotted key → value for the flags given on the command line (already typed by click);
            ``None`` values count as not given.
        env: the environment (``os.environ``); empty variables count as unset.
        file: the parsed config file (empty when absent).

    Raises:
        SettingsError: an unknown table or key, a wrong type or value in the file (naming the file and
            line) or in a variable (naming it).
    """
    from_file, aliases = _file_values(file)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        key = option.key
        if flags.get(key) is not None:
            values[key], sources[key] = flags[key], f"flag {option.flag}"
        elif env.get(option.env):
            values[key], sources[key] = parse_env(option, env[option.env]), f"env {option.env}"
        elif key in from_file:
            values[key], where = from_file[key]
            sources[key] = f"file {where}"
        else:
            values[key], sources[key] = option.default, "default"
    return Resolved(
        values=values,
        sources=sources,
        aliases={name: target for name, (target, _) in aliases.items()},
        alias_sources={name: f"file {where}" for name, (_, where) in aliases.items()},
    )


def settings_from(
    resolved: Resolved, *, store_dir: Path, store_passphrase: str | None = None
) -> config.Settings:
    """The :class:`~codexgw.config.Settings` the resolved values describe.

    Raises:
        click.UsageError: only one of certfile/keyfile is set.
        SettingsError: a TLS file does not exist.
    """
    certfile, keyfile = resolved.serve("certfile"), resolved.serve("keyfile")
    if (certfile is None) != (keyfile is None):
        raise click.UsageError("--certfile and --keyfile go together")
    for option in SERVE_OPTIONS:
        value = resolved.serve(option.name)
        if option.path and value is not None and not Path(value).expanduser().is_file():
            raise SettingsError(f"{option.key} ({resolved.sources[option.key]}): no such file {value}")
    from codexgw.translate.model_names import merged_aliases

    url = resolved.notify("url")
    notify = None
    if url:
        notify = config.NotifySettings(
            url=url,
            format=resolved.notify("format"),
            interval_s=resolved.notify("interval"),
            low_percent=resolved.notify("low"),
            critical_percent=resolved.notify("critical"),
        )
    return config.Settings(
        store_dir=store_dir,
        upstream_url=resolved.serve("upstream"),
        auth_url=resolved.serve("auth_url"),
        host=resolved.serve("host"),
        port=resolved.serve("port"),
        retries=resolved.serve("retries"),
        api_key=resolved.serve("api_key") or None,
        certfile=certfile,
        keyfile=keyfile,
        log_format=resolved.serve("log_format"),
        log_level=resolved.serve("log_level"),
        reasoning_mode=resolved.serve("reasoning_mode"),
        strategy=resolved.serve("strategy"),
        probe_interval_s=resolved.serve("probe_interval"),
        keepalive_after_s=resolved.serve("keepalive_after"),
        coalesce_ms=resolved.serve("coalesce_ms"),
        grace_s=resolved.serve("grace"),
        dashboard=resolved.serve("dashboard"),
        max_body_bytes=resolved.serve("max_body_bytes"),
        server_names=tuple(resolved.serve("server_name")),
        allow_origins=tuple(resolved.serve("allow_origin")),
        model_aliases=merged_aliases(resolved.aliases),
        notify=notify,
        store_passphrase=store_passphrase,
        workers=worker_count(resolved.serve("workers"), resolved.sources.get("serve.workers", "")),
    )


def worker_count(text: str, where: str = "") -> int:
    """``serve --workers``: a whole number from 1 to 64, or ``auto`` (the CPUs this process may use).

    Raises:
        SettingsError: anything else, naming the rule.
    """
    text = str(text).strip().lower()
    if text == "auto":
        try:
            return max(1, min(64, len(os.sched_getaffinity(0))))
        except (AttributeError, OSError):
            return max(1, min(64, os.cpu_count() or 1))
    if text.isdigit() and 1 <= int(text) <= 64:
        return int(text)
    source = f" ({where})" if where else ""
    raise SettingsError(f"serve.workers{source} must be auto or a whole number from 1 to 64, not {text!r}")


def load_settings(
    ctx_obj: Mapping[str, Any],
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    missing_ok: bool = False,
) -> tuple[Resolved, ConfigFile]:
    """Read the config file named by ``ctx_obj["config_path"]`` (``--config``) or the environment, and
    resolve every setting (the shell around :func:`resolve`). ``missing_ok``: a named file that does
    not exist yet counts as empty (``setup`` may create it).

    Raises:
        ConfigFileError: the file is missing (when named), unreadable or not TOML.
        SettingsError: as :func:`resolve`.
    """
    env = os.environ if env is None else env
    path, explicit = config_path_from(ctx_obj.get("config_path"), env)  # type: ignore[arg-type]
    file = read_config_file(path, explicit=explicit and not missing_ok)
    return resolve(flags or {}, env, file), file
