"""What ``codexgw doctor`` looks at: the shell that gathers facts for :mod:`codexgw.cli.doctor_checks`.

Nothing here changes anything: the store is read through a read-only SQLite connection (only
non-secret columns: names, statuses, plans), ports are probed by binding and closing at once, and
the network probes are plain GETs without credentials.
"""

from __future__ import annotations

import email.utils
import os
import socket
import sqlite3
import stat
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from codexgw.cli.doctor_checks import PortFacts, ReachFacts, StoreFacts

__all__ = [
    "codex_config",
    "health",
    "port_facts",
    "reach",
    "service_facts",
    "store_facts",
]

HTTP_TIMEOUT_S = 5.0


def store_facts(store_dir: Path) -> tuple[StoreFacts, list[dict[str, Any]]]:
    """The store directory's modes, schema, key state, and its accounts' public columns."""
    from codexgw.cli.store_key import StoreKeyError, passphrase_from_environment
    from codexgw.store.crypto import KeyRecord, open_key
    from codexgw.store.migrations import MIGRATIONS
    from codexgw.store.models import StoreError

    known = len(MIGRATIONS)
    db = store_dir / "codexgw.db"
    if not db.exists():
        return StoreFacts(path=str(store_dir), exists=False, known_schema=known), []
    uid = os.getuid()
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in store_dir.iterdir() if p.is_file()}
    foreign = [p.name for p in [store_dir, *store_dir.iterdir()] if p.stat().st_uid != uid]
    facts: dict[str, Any] = {
        "path": str(store_dir), "exists": True, "dir_mode": stat.S_IMODE(store_dir.stat().st_mode),
        "files": files, "foreign": foreign, "known_schema": known,
    }  # fmt: skip
    accounts: list[dict[str, Any]] = []
    try:
        conn = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True, timeout=5.0)
        try:
            conn.row_factory = sqlite3.Row
            facts["schema"] = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            record = None
            if "store_key" in tables:
                row = conn.execute("SELECT salt, n, r, p, check_value FROM store_key").fetchone()
                if row is not None:
                    record = KeyRecord(bytes(row["salt"]), row["n"], row["r"], row["p"], row["check_value"])
            if "accounts" in tables:
                cols = "name, enabled, status, status_reason, plan_type"
                accounts = [dict(r) for r in conn.execute(f"SELECT {cols} FROM accounts ORDER BY id")]
        finally:
            conn.close()
    except sqlite3.Error as e:
        facts["error"] = f"{db}: {e}"
        return StoreFacts(**facts), []
    if record is not None:
        facts["encrypted"] = True
        try:
            passphrase = passphrase_from_environment()
        except StoreKeyError as e:
            facts["key"] = str(e)
        else:
            if not passphrase:
                facts["key"] = "no key set (CODEXGW_STORE_KEY, CODEXGW_STORE_KEY_FILE)"
            else:
                try:
                    open_key(record, passphrase, where=str(store_dir))
                    facts["key"] = "ok"
                except StoreError as e:
                    facts["key"] = "wrong" if "wrong store key" in str(e) else str(e)
    return StoreFacts(**facts), accounts


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def health(url: str) -> tuple[dict[str, Any] | None, str | None]:
    """``GET {url}/health``: ``(document, None)`` from a codexgw, else ``(None, why)``."""
    from codexgw.client.probe import probe_get

    probe = probe_get(f"{url.rstrip('/')}/health", timeout_s=HTTP_TIMEOUT_S)
    response = probe.response
    if response is None:
        return None, f"no answer ({probe.error})"
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if response.status_code == 200 and isinstance(doc, dict) and "accounts" in doc and "status" in doc:
        return doc, None
    return None, f"HTTP {response.status_code}, not a codexgw /health"


def cooldowns(url: str, api_key: str | None) -> dict[str, dict[str, Any]] | None:
    """Account name → cooldown from the server's ``/status`` (``None`` when it does not answer)."""
    from codexgw.client.probe import probe_get

    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    response = probe_get(f"{url.rstrip('/')}/status", timeout_s=HTTP_TIMEOUT_S, headers=headers).response
    try:
        doc = response.json() if response is not None and response.status_code == 200 else None
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    return {str(r.get("name")): r.get("cooldown") for r in doc.get("accounts") or [] if r.get("cooldown")}


def port_facts(host: str, port: int, purpose: str, *, codexgw_url: str | None) -> PortFacts:
    """Free, held by a codexgw (its ``/health`` answers at ``codexgw_url``), or busy."""
    if _bindable(host, port):
        return PortFacts(host, port, "free", purpose)
    if codexgw_url is not None and health(codexgw_url)[0] is not None:
        return PortFacts(host, port, "codexgw", purpose)
    return PortFacts(host, port, "busy", purpose)


def service_facts(scope: str) -> tuple[bool, bool, str | None]:
    """``(systemd running, unit installed, systemctl is-active answer)``."""
    from codexgw.cli.service import systemd_running as running
    from codexgw.cli.service import unit_path

    if not running():
        return False, unit_path(scope).exists(), None
    installed = unit_path(scope).exists()
    try:
        done = subprocess.run(
            ["systemctl", *(["--user"] if scope == "user" else []), "is-active", "codexgw"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return True, installed, done.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return True, installed, None


def codex_config(codex_home: Path) -> tuple[str, dict[str, Any] | None, str | None]:
    """``(path, parsed config.toml or None when absent, error)``."""
    path = codex_home / "config.toml"
    try:
        return str(path), tomllib.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return str(path), None, None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return str(path), None, f"cannot be read ({e})"


def _proxy_for(url: str) -> str | None:
    scheme = urlsplit(url).scheme
    host = urlsplit(url).hostname or ""
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    if any(
        host == d.strip().lstrip(".") or host.endswith("." + d.strip().lstrip("."))
        for d in no_proxy.split(",")
        if d.strip()
    ):
        return None
    for name in (f"{scheme.upper()}_PROXY", f"{scheme}_proxy", "ALL_PROXY", "all_proxy"):
        if os.environ.get(name):
            return name
    return None


def reach(name: str, url: str) -> tuple[ReachFacts, float | None]:
    """GET ``url`` (no credentials): where it stops, the HTTP status, a Cloudflare challenge, and the
    ``Date`` header (epoch s) for the clock check."""
    from codexgw.client.probe import probe_get
    from codexgw.pool.health import health_verdict

    proxy = _proxy_for(url)
    parts = urlsplit(url)
    if proxy is None and parts.hostname:
        try:
            socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        except socket.gaierror as e:
            return ReachFacts(name, url, "dns", f"DNS cannot resolve {parts.hostname} ({e.strerror})"), None
    probe = probe_get(url, timeout_s=10.0)
    response = probe.response
    if response is None:
        what = {"timeout": "timed out", "tls": "TLS handshake failed"}.get(probe.stage, "cannot connect")
        return ReachFacts(name, url, probe.stage, f"{what} ({probe.error})", proxy=proxy), None
    verdict = health_verdict(response.status_code, response.content, None)
    cloudflare = response.headers.get("cf-mitigated") == "challenge" or (
        verdict is not None and "Cloudflare" in verdict.reason
    )
    date = response.headers.get("date")
    when = None
    if date:
        try:
            when = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            when = None
    return ReachFacts(
        name, url, "http", status=response.status_code, cloudflare=cloudflare, proxy=proxy
    ), when


def shiv_root() -> tuple[str, bool, bool]:
    """``(SHIV_ROOT or ~/.shiv, writable or creatable, set in the environment)``."""
    from_env = bool(os.environ.get("SHIV_ROOT"))
    root = Path(os.environ.get("SHIV_ROOT") or Path.home() / ".shiv")
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return str(root), os.access(probe, os.W_OK | os.X_OK), from_env


def now() -> float:
    return time.time()
