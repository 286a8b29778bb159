"""``codexgw doctor``'s checks, as pure functions over gathered facts (no I/O here).

Each function takes what :mod:`codexgw.cli.doctor_facts` found (plain data) and returns
:class:`Check`\\ s: ``ok`` (✓), ``warn`` (!), ``fail`` (✗, with a fix; ``doctor`` exits 1) or
``skip`` (–, not applicable here: a container without systemd, a source install without a zipapp).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Check",
    "PortFacts",
    "ReachFacts",
    "StoreFacts",
    "check_accounts",
    "check_clock",
    "check_codex_config",
    "check_port",
    "check_python",
    "check_reach",
    "check_server",
    "check_service",
    "check_shiv_root",
    "check_store",
    "check_zipapp",
]

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
MAX_CLOCK_SKEW_S = 60.0
"""More skew than this against the upstream's ``Date`` and token expiry checks go wrong, seconds."""


@dataclass(frozen=True)
class Check:
    """One line of ``doctor``: ``name``, ``status`` (ok/warn/fail/skip), ``detail``, ``fix`` (for ✗ and !)."""

    name: str
    status: str
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def check_python(version: tuple[int, int, int], executable: str) -> Check:
    if version >= (3, 11, 0):
        return Check("python", OK, f"{'.'.join(map(str, version))} at {executable}")
    return Check("python", FAIL, f"{'.'.join(map(str, version))} is too old", "install Python 3.11 or newer")


def check_zipapp(zipapp: str | None, temporary: str | None) -> Check:
    """``temporary``: the temporary directory the zipapp sits in, if it does."""
    if zipapp is None:
        return Check("zipapp", SKIP, "running from an installed package (python -m codexgw)")
    if temporary is not None:
        return Check(
            "zipapp", FAIL, f"{zipapp} is in a temporary directory ({temporary})",
            "copy it somewhere permanent, e.g. ~/.local/bin/codexgw.pyz",
        )  # fmt: skip
    return Check("zipapp", OK, zipapp)


def check_shiv_root(zipapp: str | None, root: str, writable: bool, from_env: bool) -> Check:
    if zipapp is None:
        return Check("SHIV_ROOT", SKIP, "not a zipapp: nothing to unpack")
    if writable:
        return Check("SHIV_ROOT", OK, f"{root} is writable" + ("" if from_env else " (default ~/.shiv)"))
    return Check("SHIV_ROOT", FAIL, f"{root} is not writable", "set SHIV_ROOT to a writable directory")


@dataclass(frozen=True)
class StoreFacts:
    """What the store directory looks like, read without changing it.

    Attributes:
        path: the directory.
        exists: it exists.
        dir_mode: its permission bits.
        files: file name → permission bits (``codexgw.db``, ``-wal``, ``responses.db`` …).
        foreign: names of entries owned by another user.
        schema: ``PRAGMA user_version``, ``None`` when unreadable.
        known_schema: the version this codexgw writes.
        error: why the database could not be read, if it could not.
        encrypted: it has a key record.
        key: ``"ok"``, ``"missing"`` or ``"wrong"`` (encrypted stores only), or a key source problem.
    """

    path: str
    exists: bool
    dir_mode: int = 0o700
    files: dict[str, int] = field(default_factory=dict)
    foreign: list[str] = field(default_factory=list)
    schema: int | None = None
    known_schema: int = 0
    error: str | None = None
    encrypted: bool = False
    key: str | None = None


def check_store(facts: StoreFacts) -> list[Check]:
    if not facts.exists:
        return [Check("store", FAIL, f"no store at {facts.path}", "add an account: codexgw setup")]
    out: list[Check] = []
    loose = [f"{name} {mode:04o}" for name, mode in sorted(facts.files.items()) if mode & 0o077]
    if facts.dir_mode & 0o077 or loose or facts.foreign:
        problems = ([f"directory {facts.dir_mode:04o}"] if facts.dir_mode & 0o077 else []) + loose
        problems += [f"{name} owned by another user" for name in facts.foreign]
        out.append(
            Check(
                "store permissions", FAIL, f"{facts.path}: {', '.join(problems)}",
                f"chmod 700 {facts.path} && chmod 600 {facts.path}/* (and chown them to this user)",
            )
        )  # fmt: skip
    else:
        out.append(Check("store permissions", OK, f"{facts.path} 0700, files 0600"))
    if facts.error is not None:
        out.append(
            Check("store schema", FAIL, facts.error, "restore the store from a backup, or move it aside")
        )
    elif facts.schema is not None and facts.schema > facts.known_schema:
        out.append(
            Check("store schema", FAIL, f"version {facts.schema}, newer than this codexgw ({facts.known_schema})", "upgrade codexgw")
        )  # fmt: skip
    elif facts.schema is not None and facts.schema < facts.known_schema:
        out.append(
            Check("store schema", OK, f"version {facts.schema}; migrated to {facts.known_schema} on next use")
        )
    else:
        out.append(Check("store schema", OK, f"version {facts.schema}"))
    if facts.encrypted:
        if facts.key == "ok":
            out.append(Check("store key", OK, "encrypted; the key opens it"))
        elif facts.key == "wrong":
            out.append(
                Check(
                    "store key",
                    FAIL,
                    "encrypted, and the key given does not open it",
                    "check CODEXGW_STORE_KEY / the key file",
                )
            )
        else:
            out.append(
                Check("store key", FAIL, f"encrypted, {facts.key or 'no key set'}", "set CODEXGW_STORE_KEY_FILE to the store's key file")
            )  # fmt: skip
    return out


def check_accounts(
    accounts: list[dict[str, Any]], cooldowns: dict[str, dict[str, Any]] | None
) -> list[Check]:
    """``accounts``: ``{"name", "enabled", "status", "status_reason", "plan_type"}`` each;
    ``cooldowns``: name → the server's ``/status`` cooldown (``None``: no server asked)."""
    if not accounts:
        return [Check("accounts", FAIL, "no accounts", "log in: codexgw login device (or codexgw setup)")]
    out = []
    for a in accounts:
        name, reason = a["name"], f" ({a['status_reason']})" if a.get("status_reason") else ""
        label = f"account {name}"
        if not a.get("enabled"):
            out.append(Check(label, WARN, "disabled", f"codexgw accounts enable {name}"))
        elif a["status"] == "needs_login":
            out.append(
                Check(label, FAIL, f"needs a new login{reason}", f"codexgw login device --name {name}")
            )
        elif a["status"] == "suspended":
            out.append(
                Check(label, FAIL, f"suspended by the backend{reason}", f"codexgw accounts remove {name}")
            )
        elif a["status"] == "plan_unsupported":
            out.append(
                Check(label, FAIL, f"plan {a.get('plan_type') or '?'} does not include Codex", f"codexgw accounts remove {name}")
            )  # fmt: skip
        elif cooldowns and cooldowns.get(name):
            cd = cooldowns[name]
            out.append(Check(label, WARN, f"cooling down {cd.get('in_s', 0):.0f}s ({cd.get('reason')})"))
        else:
            out.append(Check(label, OK, f"active, {a.get('plan_type') or 'plan unknown'}"))
    return out


def check_clock(local: float | None, upstream_date: float | None, source: str) -> Check:
    if local is None or upstream_date is None:
        return Check("clock", SKIP, f"no Date header from {source}")
    skew = local - upstream_date
    if abs(skew) <= MAX_CLOCK_SKEW_S:
        return Check("clock", OK, f"{skew:+.0f}s against {source}")
    return Check(
        "clock", FAIL, f"{skew:+.0f}s off {source}'s Date", "synchronise the clock (timedatectl set-ntp true)"
    )


@dataclass(frozen=True)
class PortFacts:
    """``state``: ``free``, ``codexgw`` (busy, and a codexgw answers ``/health`` there) or ``busy``."""

    host: str
    port: int
    state: str
    purpose: str


def check_port(facts: PortFacts, *, required: bool) -> Check:
    name = f"port {facts.port}"
    if facts.state == "free":
        return Check(name, OK, f"free ({facts.purpose})")
    if facts.state == "codexgw":
        return Check(name, OK, f"held by codexgw ({facts.purpose})")
    fix = (
        "stop the program holding it, or choose another: codexgw serve --port N ([serve] port)"
        if required
        else "finish or cancel the pending `codex login`/`codexgw login pkce`, or use codexgw login device"
    )
    return Check(name, FAIL if required else WARN, f"in use by another program ({facts.purpose})", fix)


def check_service(systemd: bool, installed: bool, active: str | None, scope: str) -> Check:
    """``active``: ``systemctl is-active``'s answer (``active``, ``inactive``, ``failed`` …)."""
    if not systemd:
        return Check("service", SKIP, "systemd is not running here (a container?); not checked")
    if not installed:
        return Check("service", WARN, f"no {scope} unit installed", "codexgw service install")
    if active == "active":
        return Check("service", OK, f"{scope} unit active")
    return Check(
        "service",
        FAIL,
        f"{scope} unit {active or 'unknown'}",
        "codexgw service restart; codexgw service logs",
    )


def check_server(url: str, health: dict[str, Any] | None, error: str | None) -> Check:
    if health is not None:
        detail = f"{url}: {health.get('usable_accounts', '?')}/{health.get('accounts', '?')} accounts usable"
        return Check("server", OK, detail)
    return Check(
        "server",
        FAIL,
        f"{url}: {error or 'no answer'}",
        "start it: codexgw service install (or codexgw serve)",
    )


def check_codex_config(
    path: str,
    config: dict[str, Any] | None,
    error: str | None,
    base_url: str,
    needs_key: bool,
    env: dict[str, str],
) -> Check:
    """``config``: Codex's parsed ``config.toml`` (``None`` when absent); ``base_url``: the gateway's
    ``…/v1`` URL; ``needs_key``: the gateway requires an API key."""
    if error is not None:
        return Check("codex config", FAIL, f"{path}: {error}", "fix the TOML, then: codexgw configure codex")
    if config is None:
        return Check(
            "codex config", WARN, f"{path} does not exist (Codex not pointed here)", "codexgw configure codex"
        )
    providers = config.get("model_providers") or {}
    name = config.get("model_provider")
    provider = providers.get(name) if isinstance(name, str) else None
    if not isinstance(provider, dict):
        return Check(
            "codex config", WARN, f"Codex uses provider {name or 'openai (default)'}, not codexgw",
            "codexgw configure codex",
        )  # fmt: skip
    got = str(provider.get("base_url") or "").rstrip("/")
    if got != base_url.rstrip("/"):
        return Check(
            "codex config", FAIL, f"provider {name} points at {got or 'nothing'}, not {base_url}",
            f"codexgw configure codex --base-url {base_url}",
        )  # fmt: skip
    if provider.get("wire_api") != "responses":
        return Check(
            "codex config",
            FAIL,
            f"provider {name} has wire_api {provider.get('wire_api')!r}",
            "codexgw configure codex",
        )
    env_key = provider.get("env_key")
    if needs_key and not env_key:
        return Check(
            "codex config", FAIL, f"the gateway needs a key, but provider {name} has no env_key",
            "codexgw configure codex --env-key",
        )  # fmt: skip
    if env_key and not env.get(str(env_key)):
        return Check(
            "codex config",
            WARN,
            f"provider {name} reads ${env_key}, which is not set here",
            f"export {env_key}=<gateway key>",
        )
    return Check(
        "codex config", OK, f"provider {name} → {got}" + (f" (key from ${env_key})" if env_key else "")
    )


@dataclass(frozen=True)
class ReachFacts:
    """One reachability probe: ``stage`` where it stopped (``dns``, ``connect``, ``tls``, ``timeout``,
    ``http``), ``status`` (HTTP), ``cloudflare`` (a challenge page), ``proxy`` (the proxy variable in use)."""

    name: str
    url: str
    stage: str
    detail: str = ""
    status: int | None = None
    cloudflare: bool = False
    proxy: str | None = None


def check_reach(facts: ReachFacts) -> Check:
    via = f" via {facts.proxy}" if facts.proxy else ""
    if facts.stage == "http" and facts.status is not None:
        if facts.cloudflare:
            return Check(
                facts.name, FAIL, f"{facts.url}: a Cloudflare challenge (HTTP {facts.status}){via}",
                "this network or IP is challenged; try another network or a proxy (HTTPS_PROXY)",
            )  # fmt: skip
        if facts.status >= 500:
            return Check(
                facts.name, FAIL, f"{facts.url}: HTTP {facts.status}{via}", "the service is down; try later"
            )
        return Check(facts.name, OK, f"{facts.url}: HTTP {facts.status}{via}")
    fixes = {
        "dns": "check DNS (resolv.conf), or set HTTPS_PROXY",
        "connect": "check the firewall, or set HTTPS_PROXY",
        "tls": "check the system's CA certificates, or a proxy intercepting TLS",
        "timeout": "check the network, or set HTTPS_PROXY",
    }
    return Check(facts.name, FAIL, f"{facts.url}: {facts.detail}{via}", fixes.get(facts.stage))
