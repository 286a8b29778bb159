"""Settings for codexgw: flags > ``CODEXGW_*`` environment > config file (TOML) > defaults.

The CLI builds one :class:`Settings` (:mod:`codexgw.cli.settings` reads the flags, the environment
and ``config.toml``, and says where each value came from) and hands it to whatever it runs; nothing
else reads the environment or the config file.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_UPSTREAM = "https://chatgpt.com/backend-api"
"""Codex backend base; codexgw calls ``{upstream}/codex/responses`` etc. (codex-protocol.md §6.1)."""

DEFAULT_AUTH_URL = "https://auth.openai.com"
"""OAuth issuer (codex-protocol.md §1)."""

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
"""The Codex CLI's OAuth client_id (codex-protocol.md §1)."""

CODEX_CLIENT_VERSION = "0.125.0"
"""Codex release whose request shapes we follow (codex-protocol.md §0); sent as ``version``."""


MIN_API_KEY_CHARS = 16
"""Shortest ``--api-key`` accepted (visible ASCII characters, issue 16): a key guards the whole pool."""


def is_loopback(host: str) -> bool:
    """True when ``host`` (a name or address, IPv6 with or without brackets) only reaches this machine:
    ``localhost``, or an address that parses as loopback (``127.0.0.0/8``, ``::1``; not a name that
    merely starts with ``127.``)."""
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def api_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be the gateway's API key, or ``None``: it must be at least
    :data:`MIN_API_KEY_CHARS` visible ASCII characters (no spaces)."""
    if len(key) < MIN_API_KEY_CHARS or not all("!" <= c <= "~" for c in key):
        return (
            f"the API key must be at least {MIN_API_KEY_CHARS} visible ASCII characters, without spaces "
            "(generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return None


DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""``--max-body-bytes`` (issue 16): a Codex turn carries its whole history, and a 272k-token context
is ~1 MiB of text; with the JSON around it, encrypted reasoning items, tool outputs and a few base64
screenshots, the largest bodies seen are a few MiB. 16 MiB leaves room for those and bounds what
one request may cost (with :mod:`codexgw.translate.json_limits`, well under 256 MiB)."""

LOG_LEVELS = ("debug", "info", "warning", "error")
"""``serve --log-level`` values (the standard ``logging`` levels, lower case)."""


def default_store_dir() -> Path:
    """Return ``$CODEXGW_HOME`` or ``~/.codexgw``."""
    env = os.environ.get("CODEXGW_HOME")
    return Path(env).expanduser() if env else Path.home() / ".codexgw"


def command_name(argv0: str | None = None) -> str:
    """The command as the user runs it, for hints: ``./codexgw.pyz`` (the zipapp, as typed; a bare
    ``codexgw.pyz`` gets ``./``), ``python -m codexgw``, else ``codexgw``. ``argv0``: default
    ``sys.argv[0]``."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    base = os.path.basename(argv0)
    if base.endswith(".pyz"):
        return argv0 if os.sep in argv0 else f".{os.sep}{argv0}"
    if base == "__main__.py":
        return "python -m codexgw"
    return "codexgw"


@dataclass(frozen=True)
class NotifySettings:
    """Where and when to send notifications (the ``[notify]`` table; see :mod:`codexgw.pool.notices`).

    Attributes:
        url: an ntfy topic URL (``https://ntfy.sh/my-topic``) or any webhook taking a JSON POST.
        format: ``ntfy`` (plain-text body, ``Title``/``Priority``/``Tags`` headers), ``json``, or
            ``auto`` (ntfy when the host name starts with ``ntfy``, else JSON).
        interval_s: at most one notification per kind and account in this many seconds.
        low_percent, critical_percent: quota thresholds, in percent of a window *left*.
        poll_s: how often the server looks at the pool for something to tell, seconds.
    """

    url: str
    format: str = "auto"
    interval_s: float = 3600.0
    low_percent: float = 20.0
    critical_percent: float = 5.0
    poll_s: float = 5.0


@dataclass
class Settings:
    """Everything ``serve`` needs. Times are seconds, sizes bytes.

    Attributes:
        store_dir: the store directory (created 0700).
        upstream_url: Codex backend base URL, no trailing slash.
        auth_url: OAuth issuer base URL, no trailing slash.
        host, port: where to listen (port 0 = ephemeral).
        retries: at most this many moves to another account per request.
        api_key: gateway key clients must send as ``Authorization: Bearer``; required off loopback.
        certfile, keyfile: TLS (enables ALPN ``h2``); plain TCP speaks HTTP/1.1 and h2c.
        max_body_bytes: largest request body accepted, as received and decoded (413 beyond).
        refresh_margin_s: refresh an access token this long before its ``exp``.
        refresh_check_s: how often the background refresher looks for tokens about to expire.
        models_ttl_s: how long the upstream model catalogue is cached.
        default_cooldown_s: cooldown after a 429 that names no reset.
        graceful_timeout_s: after the drain, how long hypercorn waits for connections to close.
        grace_s: on SIGTERM/SIGINT, how long open requests may run on before they are cut with an
            in-band ``server_shutting_down`` error (``serve --grace``, :mod:`codexgw.upstream.drain`).
        accounts_poll_s: how often the server checks the store for CLI changes.
        heartbeat_s: write an SSE comment after this much upstream silence on an open stream.
        coalesce_ms: a streamed event waits up to this long (ms) for more to go out in the same
            write (0 = each read goes out at once); only on the directly read upstream body.
        keepalive_after_s: a streamed answer with no output after this long gets its 200 headers
            and SSE comments (every ``heartbeat_s``) while failover goes on (0 = never: the client
            waits in silence for the first output).
        ws_max_age_s: a Responses WebSocket older than this answers ``response.create`` with the
            backend's ``websocket_connection_limit_reached`` (60 minutes, codex-protocol.md §9).
        log_format: ``text`` or ``json`` log lines.
        log_level: one of :data:`LOG_LEVELS`.
        reasoning_mode: default reasoning display in Chat Completions (``content``/``think``/``hidden``).
        strategy: pool strategy (``round-robin``, ``least-used``, ``random``, ``weighted``, ``quota``);
            when set, ``serve`` saves it in the store (so ``accounts strategy`` can change it later);
            ``None`` keeps the stored choice (default round-robin).
        probe_interval_s: probe each account's ``/wham/usage`` about this often (0 = never).
        dashboard: serve the web dashboard at ``/`` and ``/dashboard`` (``serve --no-dashboard``: off).
        model_aliases: model name → the model it stands for (``[models.aliases]`` over the
            built-in ones, see :mod:`codexgw.translate.aliases`); ``None`` means the built-in ones.
        notify: notification settings, or ``None`` (no ``[notify] url``).
        store_passphrase: the store's encryption passphrase (see :mod:`codexgw.store.crypto`),
            ``None`` for an unencrypted store; never shown in a ``repr``.
        usage_flush_s: how often the usage counters are written to the store (teams, issue 12).
        login_callback_port: where a browser login started through the admin API listens while it
            waits (1455 is the port ChatGPT redirects to; 0 = any, for tests).
        server_names: ``Host`` names served besides loopback names and IP literals (``.example.com``:
            its subdomains too; ``*``: any), see :mod:`codexgw.api.edge`.
        allow_origins: browser origins (``https://app.example.com``, ``*``) allowed to call the
            gateway cross-site; they get CORS headers.
        workers: processes serving the port together (``serve --workers``; 1 = this process alone).
        worker_index: this process's worker number (0 … workers-1), ``None`` outside a supervisor.
    """

    store_dir: Path = field(default_factory=default_store_dir)
    upstream_url: str = DEFAULT_UPSTREAM
    auth_url: str = DEFAULT_AUTH_URL
    host: str = "127.0.0.1"
    port: int = 8080
    retries: int = 3
    api_key: str | None = field(default=None, repr=False)
    certfile: str | None = None
    keyfile: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    refresh_margin_s: float = 300.0
    refresh_check_s: float = 30.0
    models_ttl_s: float = 300.0
    default_cooldown_s: float = 60.0
    graceful_timeout_s: float = 3.0
    grace_s: float = 30.0
    accounts_poll_s: float = 1.0
    heartbeat_s: float = 15.0
    coalesce_ms: float = 0.0
    keepalive_after_s: float = 10.0
    ws_max_age_s: float = 3600.0
    log_format: str = "text"
    reasoning_mode: str = "content"
    strategy: str | None = None
    probe_interval_s: float = 300.0
    dashboard: bool = True
    log_level: str = "info"
    model_aliases: dict[str, str] | None = None
    notify: NotifySettings | None = None
    store_passphrase: str | None = field(default=None, repr=False)
    usage_flush_s: float = 2.0
    login_callback_port: int = 1455
    server_names: tuple[str, ...] = ()
    allow_origins: tuple[str, ...] = ()
    workers: int = 1
    worker_index: int | None = None

    def __post_init__(self) -> None:
        self.store_dir = Path(self.store_dir).expanduser()
        self.upstream_url = self.upstream_url.rstrip("/")
        self.auth_url = self.auth_url.rstrip("/")

    @property
    def is_loopback(self) -> bool:
        """True when ``host`` only accepts connections from this machine."""
        return is_loopback(self.host)
