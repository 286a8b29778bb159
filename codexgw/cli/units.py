"""Service definitions for ``codexgw service install``: a systemd unit and a launchd LaunchAgent (pure).

:func:`systemd_unit` and :func:`launchd_plist` turn a :class:`ServiceSpec` into the file's text; the
command (:mod:`codexgw.cli.service`) gathers the spec (absolute paths of the interpreter and the
zipapp, the store, the config file, serve flags, the key file) and writes, enables and starts it.

The systemd unit (``systemd.service(5)``, ``systemd.exec(5)``):

* ``ExecStart=`` the absolute ``python3`` and zipapp (or ``python -m codexgw`` from an install),
  with ``--store`` and ``--config``; ``Restart=on-failure``;
* ``StateDirectory=codexgw`` and ``SHIV_ROOT=%S/codexgw/shiv``: the zipapp unpacks into a
  directory systemd creates writable for the service (``%S`` is ``/var/lib`` for a system unit, the
  user's state directory for a user unit), so a read-only home is no problem;
* hardening: ``NoNewPrivileges``, ``ProtectSystem=strict`` (everything read-only but
  ``ReadWritePaths=``: the store, and the directories of linked Codex ``auth.json`` files),
  ``PrivateTmp``;
* ``LoadCredential=codexgw-store-key:<key file>`` for an encrypted store: systemd hands the key to
  the service in ``$CREDENTIALS_DIRECTORY``, readable by it alone (``codexgw.cli.store_key``).
"""

from __future__ import annotations

import math
import plistlib
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SERVICE_NAME", "ServiceSpec", "exec_args", "launchd_plist", "systemd_quote", "systemd_unit"]

SERVICE_NAME = "codexgw"
LAUNCHD_LABEL = "com.codexgw.gateway"


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs, and with what.

    Attributes:
        python: absolute path of the interpreter.
        zipapp: absolute path of ``codexgw.pyz``, or ``None`` to run ``python -m codexgw``.
        store_dir: absolute store directory (``--store``).
        config_path: absolute config file (``--config``), or ``None``.
        serve_args: extra ``serve`` flags, e.g. ``["--port", "9000"]``.
        scope: ``user`` or ``system``.
        run_as: the account a system unit runs as (``User=``), or ``None``.
        key_file: the store's key file for ``LoadCredential=``, or ``None``.
        writable: more directories the service may write (linked Codex homes).
        state_dir: launchd only: where ``SHIV_ROOT`` and the log go.
        grace_s: the server's drain grace (``serve --grace``, s): ``TimeoutStopSec=`` is 10 s more.
    """

    python: str
    zipapp: str | None
    store_dir: str
    config_path: str | None = None
    serve_args: list[str] = field(default_factory=list)
    scope: str = "user"
    run_as: str | None = None
    key_file: str | None = None
    writable: list[str] = field(default_factory=list)
    state_dir: str | None = None
    grace_s: float = 30.0


def stop_timeout_s(grace_s: float) -> int:
    """``TimeoutStopSec=``: the drain's grace (``serve --grace``) plus 10 s for the cut streams'
    last bytes and the connections' close, so systemd never SIGKILLs a draining server."""
    return math.ceil(grace_s) + 10


def exec_args(spec: ServiceSpec) -> list[str]:
    """The command line: ``[python, zipapp | -m codexgw, --store, …, serve, …flags]``."""
    head = [spec.python, spec.zipapp] if spec.zipapp else [spec.python, "-m", "codexgw"]
    args = [*head, "--store", spec.store_dir]
    if spec.config_path:
        args += ["--config", spec.config_path]
    return [*args, "serve", *spec.serve_args]


_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def systemd_quote(arg: str) -> str:
    """One ``ExecStart=`` word: ``%`` doubled (specifiers), quoted when it holds anything else."""
    arg = arg.replace("%", "%%")
    if arg and _PLAIN.fullmatch(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _path_value(path: str) -> str:
    """A path for ``ReadWritePaths=``/``LoadCredential=`` (spaces and ``%`` escaped per systemd)."""
    return path.replace("%", "%%").replace(" ", "\\x20")


def systemd_unit(spec: ServiceSpec) -> str:
    """The unit file's text (see the module docstring)."""
    lines = [
        "# Written by `codexgw service install`; `codexgw service uninstall` removes it.",
        "[Unit]",
        "Description=codexgw: OpenAI-compatible gateway over ChatGPT (Codex) logins",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        "ExecStart=" + " ".join(systemd_quote(a) for a in exec_args(spec)),
        "Restart=on-failure",
        "RestartSec=5",
        f"TimeoutStopSec={stop_timeout_s(spec.grace_s)}",
        "StateDirectory=codexgw",
        "StateDirectoryMode=0700",
        "Environment=SHIV_ROOT=%S/codexgw/shiv",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if spec.scope == "system" and spec.run_as:
        lines.append(f"User={spec.run_as}")
    lines += [
        "UMask=0077",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={_path_value(spec.store_dir)}",
    ]
    lines += [f"ReadWritePaths=-{_path_value(p)}" for p in spec.writable if p != spec.store_dir]
    lines.append("PrivateTmp=yes")
    if spec.key_file:
        lines.append(f"LoadCredential=codexgw-store-key:{_path_value(spec.key_file)}")
    target = "multi-user.target" if spec.scope == "system" else "default.target"
    lines += ["", "[Install]", f"WantedBy={target}", ""]
    return "\n".join(lines)


def launchd_plist(spec: ServiceSpec) -> str:
    """A LaunchAgent (``~/Library/LaunchAgents/com.codexgw.gateway.plist``): started at login, kept
    alive (``KeepAlive``), logging to ``<state dir>/codexgw.log``."""
    state = spec.state_dir or str(Path(spec.store_dir).parent / "Library" / "Application Support" / "codexgw")
    env = {"SHIV_ROOT": f"{state}/shiv", "PYTHONUNBUFFERED": "1"}
    if spec.key_file:
        env["CODEXGW_STORE_KEY_FILE"] = spec.key_file
    doc = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": exec_args(spec),
        "EnvironmentVariables": env,
        "RunAtLoad": True,
        "KeepAlive": True,
        "ThrottleInterval": 5,
        "ProcessType": "Background",
        "StandardOutPath": f"{state}/codexgw.log",
        "StandardErrorPath": f"{state}/codexgw.log",
    }
    return plistlib.dumps(doc, sort_keys=False).decode("utf-8")
