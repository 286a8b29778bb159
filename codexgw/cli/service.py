"""``codexgw service install|uninstall|status|logs|restart``: run the gateway as an OS service.

On Linux a systemd unit (a user unit by default, ``--system`` for ``/etc/systemd/system``; text
from :mod:`codexgw.cli.units`), on macOS a LaunchAgent. ``install`` checks what it is given
(a zipapp in a temporary directory is refused: it would vanish), writes the file atomically,
checks it with ``systemd-analyze verify`` when that tool exists, then reloads, enables and starts
it. ``--dry-run`` prints the file and writes nothing, for machines without systemd (containers,
CI); where systemd is not running, ``install`` writes the unit and says how to start it later.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import click

from codexgw.cli.common import CliError
from codexgw.cli.options import flags_of, serve_options
from codexgw.cli.systemd import systemctl as _systemctl
from codexgw.cli.systemd import systemd_running, verify_unit
from codexgw.cli.units import LAUNCHD_LABEL, SERVICE_NAME, ServiceSpec, launchd_plist, systemd_unit

__all__ = [
    "find_zipapp",
    "service",
    "systemd_running",
    "unit_path",
]

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")


def temporary_dirs() -> list[Path]:
    """Directories a service must not run its zipapp from (they are cleaned, or private per boot)."""
    found = {Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")}
    return sorted({p.resolve() for p in found if p.exists()} | found)


def find_zipapp() -> Path | None:
    """The running ``codexgw.pyz`` (absolute), or ``None`` when running from an install (``-m``)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.is_file() and zipfile.is_zipfile(argv0):
        return argv0.resolve()
    return None


def unit_path(scope: str, platform: str = sys.platform) -> Path:
    """Where ``install`` writes: ``~/.config/systemd/user/codexgw.service`` (``$XDG_CONFIG_HOME``),
    ``/etc/systemd/system/codexgw.service``, or ``~/Library/LaunchAgents/<label>.plist``."""
    if platform == "darwin":
        return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    if scope == "system":
        return SYSTEM_UNIT_DIR / f"{SERVICE_NAME}.service"
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "systemd" / "user" / f"{SERVICE_NAME}.service"


def _write_atomic(path: Path, text: str, mode: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.codexgw-tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        hint = " (a system unit needs root: sudo)" if path.is_relative_to(SYSTEM_UNIT_DIR) else ""
        raise CliError(f"cannot write {path}: {e.strerror or e}{hint}") from None


def _scope(system: bool) -> str:
    return "system" if system else "user"


def build_spec(
    ctx_obj: dict[str, Any],
    *,
    scope: str,
    zipapp: Path | None,
    python: str | None,
    key_file: Path | None,
    run_as: str | None,
    serve_args: list[str],
    platform: str = sys.platform,
    grace_s: float = 30.0,
) -> ServiceSpec:
    """Gather and check what the service runs (the shell part of ``install``).

    Raises:
        CliError: a zipapp in a temporary directory or missing, a missing key file, an encrypted
            store without one, or a store that cannot be opened.
    """
    from codexgw.cli.common import open_store
    from codexgw.cli.config_file import config_path_from
    from codexgw.cli.store_key import KEY_ENV, KEY_FILE_ENV

    zipapp = zipapp or find_zipapp()
    if zipapp is not None:
        zipapp = zipapp.expanduser().resolve()
        if not zipapp.is_file():
            raise CliError(f"zipapp {zipapp} does not exist")
        for tmp in temporary_dirs():
            if zipapp.is_relative_to(tmp):
                raise CliError(
                    f"{zipapp} is in a temporary directory ({tmp}) that may be emptied at any time; copy it "
                    "somewhere permanent first, e.g. ~/.local/bin/codexgw.pyz, and run install from there"
                )
    interpreter = Path(python or sys.executable)
    if not interpreter.is_absolute() or not interpreter.exists():
        raise CliError(f"python {interpreter} is not an absolute path to an existing interpreter")
    store_dir = Path(ctx_obj["store_dir"]).expanduser().resolve()
    if key_file is None and os.environ.get(KEY_FILE_ENV):
        key_file = Path(os.environ[KEY_FILE_ENV])
    if key_file is not None:
        key_file = key_file.expanduser().resolve()
        if not key_file.is_file():
            raise CliError(f"key file {key_file} does not exist")
    if any(store_dir.is_relative_to(tmp) for tmp in temporary_dirs()):
        click.echo(
            f"note: the store {store_dir} is in a temporary directory, hidden from the service by PrivateTmp",
            err=True,
        )
    store = open_store(store_dir, create=True)  # ReadWritePaths= must exist; or it checks the key
    if store.encrypted and key_file is None:
        hint = (
            f" (the passphrase in {KEY_ENV} belongs in a 0600 file, not in a unit)"
            if os.environ.get(KEY_ENV)
            else ""
        )
        raise CliError(f"the store is encrypted: pass --store-key-file FILE so the service can open it{hint}")
    config_path, explicit = config_path_from(ctx_obj.get("config_path"), os.environ)
    if explicit and not config_path.exists():
        click.echo(
            f"note: the config file {config_path} does not exist, so the unit does not name it", err=True
        )
    writable = sorted({str(Path(a.linked_path).parent) for a in store.list_accounts() if a.linked_path})
    return ServiceSpec(
        python=str(interpreter),
        zipapp=str(zipapp) if zipapp else None,
        store_dir=str(store_dir),
        config_path=str(config_path.resolve()) if config_path.exists() else None,
        serve_args=serve_args,
        scope=scope,
        run_as=run_as or (os.environ.get("SUDO_USER") if scope == "system" else None),
        key_file=str(key_file) if key_file else None,
        writable=writable,
        grace_s=grace_s,
        state_dir=str(Path.home() / "Library" / "Application Support" / "codexgw")
        if platform == "darwin"
        else None,
    )


def _grace_s(ctx_obj: dict[str, Any], flags: dict[str, Any]) -> float:
    """The grace the service's server will drain with (``--grace``, else its environment variable or
    the config file, else 30 s), for ``TimeoutStopSec=``."""
    from codexgw.cli.settings import load_settings

    resolved, _file = load_settings(ctx_obj, flags_of(flags), missing_ok=True)
    return float(resolved.serve("grace"))


def serve_flag_args(flags: dict[str, Any]) -> list[str]:
    """The serve flags given to ``install``, as arguments to pass on (``["--port", "9000"]``)."""
    from codexgw.cli.settings import SERVE_OPTIONS

    args: list[str] = []
    for option in SERVE_OPTIONS:
        value = flags.get(f"serve.{option.name}")
        if value is None:
            continue
        if option.secret:
            raise click.UsageError(
                f"{option.flag} would be written into the unit in clear; put it in the config file's [serve] table"
            )
        if option.kind is bool:
            args.append(option.flag if value else "--no-" + option.flag[2:])
            continue
        if option.kind is list:  # repeatable
            for item in value:
                args += [option.flag, str(item)]
            continue
        args += [option.flag, str(value)]
    return args


@click.group("service")
def service() -> None:
    """Run codexgw as a service: systemd (Linux) or launchd (macOS)."""


_scope_option = click.option(
    "--system", is_flag=True, help="A system unit (/etc/systemd/system, needs root) instead of a user unit."
)


@service.command("install")
@_scope_option
@click.option("--dry-run", is_flag=True, help="Print the unit (or plist); write and start nothing.")
@click.option(
    "--zipapp",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The codexgw.pyz to run [default: this one].",
)
@click.option(
    "--python",
    "python",
    default=None,
    help="Absolute path of the python3 to run it with [default: this one].",
)
@click.option(
    "--store-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Key file of an encrypted store (passed as a systemd credential).",
)
@click.option("--run-as", default=None, help="System unit only: the account to run as [default: $SUDO_USER].")
@click.option("--platform", type=click.Choice(["linux", "macos"]), default=None, hidden=True)
@click.option("--no-start", is_flag=True, help="Write and enable the service, but do not start it now.")
@serve_options
@click.pass_context
def service_install(
    ctx: click.Context,
    system: bool,
    dry_run: bool,
    zipapp: Path | None,
    python: str | None,
    store_key_file: Path | None,
    run_as: str | None,
    platform: str | None,
    no_start: bool,
    **flags: Any,
) -> None:
    """Install and start the gateway as a service (serve options are passed on).

    Settings are best kept in the config file, which the service reads (--config is written into
    the unit); secrets never go into the unit.
    """
    plat = {"linux": "linux", "macos": "darwin"}.get(platform or "", sys.platform)
    scope = _scope(system)
    spec = build_spec(
        ctx.obj,
        scope=scope,
        zipapp=zipapp,
        python=python,
        key_file=store_key_file,
        run_as=run_as,
        serve_args=serve_flag_args(flags_of(flags)),
        platform=plat,
        grace_s=_grace_s(ctx.obj, flags),
    )
    text = launchd_plist(spec) if plat == "darwin" else systemd_unit(spec)
    path = unit_path(scope, plat)
    problems = [] if plat == "darwin" else verify_unit(text)
    if dry_run:
        click.echo(f"# {path} (dry run: nothing written)")
        click.echo(text, nl=False)
        for line in problems:
            click.echo(f"systemd-analyze verify: {line}", err=True)
        if problems:
            raise CliError("systemd-analyze verify found problems in the unit (above)")
        return
    if problems:
        for line in problems:
            click.echo(f"systemd-analyze verify: {line}", err=True)
        raise CliError("systemd-analyze verify found problems in the unit (above); nothing written")
    _write_atomic(path, text, 0o644 if scope == "system" else 0o600)
    click.echo(f"wrote {path}")
    if plat == "darwin":
        _launchctl_load(path, start=not no_start)
        return
    if not systemd_running():
        click.echo(
            "systemd is not running on this machine (a container?); the unit is written but not started."
        )
        click.echo(
            f"Once systemd runs: systemctl {'--user ' if scope == 'user' else ''}enable --now {SERVICE_NAME}"
        )
        return
    _systemctl(scope, "daemon-reload")
    _systemctl(scope, "enable", *([] if no_start else ["--now"]), SERVICE_NAME)
    click.echo(f"enabled{'' if no_start else ' and started'} {SERVICE_NAME} ({scope} unit)")
    if scope == "user":
        user = os.environ.get("USER") or "$USER"
        click.echo(f"to keep it running after you log out: loginctl enable-linger {user}")


def _launchctl_load(path: Path, *, start: bool) -> None:
    uid = os.getuid()
    subprocess.run(["launchctl", "bootout", f"gui/{uid}", str(path)], capture_output=True, text=True)
    done = subprocess.run(["launchctl", "bootstrap", f"gui/{uid}", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise CliError(f"launchctl bootstrap failed: {(done.stderr.strip() or 'no detail').splitlines()[-1]}")
    if start:
        subprocess.run(
            ["launchctl", "kickstart", f"gui/{uid}/{LAUNCHD_LABEL}"], capture_output=True, text=True
        )
    click.echo(f"loaded {LAUNCHD_LABEL} (runs at login, restarted if it stops)")


def _need_systemd(scope: str) -> None:
    if sys.platform == "darwin":
        raise CliError(f"on macOS use launchctl: launchctl print gui/{os.getuid()}/{LAUNCHD_LABEL}")
    if not systemd_running():
        raise CliError(f"systemd is not running on this machine; the unit file is {unit_path(scope)}")


@service.command("uninstall")
@_scope_option
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def service_uninstall(system: bool, dry_run: bool) -> None:
    """Stop and disable the service and remove its unit (or plist). The store is kept."""
    scope = _scope(system)
    path = unit_path(scope)
    if dry_run:
        click.echo(f"would stop, disable and remove {path}" if path.exists() else f"{path} does not exist")
        return
    if sys.platform == "darwin":
        subprocess.run(
            ["launchctl", "bootout", f"gui/{os.getuid()}", str(path)], capture_output=True, text=True
        )
    elif systemd_running():
        _systemctl(scope, "disable", "--now", SERVICE_NAME, check=False)
    if not path.exists():
        click.echo(f"{path} does not exist; nothing to remove")
        return
    try:
        path.unlink()
    except OSError as e:
        raise CliError(f"cannot remove {path}: {e.strerror or e}") from None
    if sys.platform != "darwin" and systemd_running():
        _systemctl(scope, "daemon-reload", check=False)
    click.echo(f"removed {path} (the store is kept)")


@service.command("status")
@_scope_option
def service_status(system: bool) -> None:
    """Show whether the service is installed and running (systemctl status)."""
    scope = _scope(system)
    path = unit_path(scope)
    click.echo(f"unit: {path} ({'installed' if path.exists() else 'not installed'})")
    _need_systemd(scope)
    done = _systemctl(scope, "status", "--no-pager", "--lines=5", SERVICE_NAME, check=False)
    click.echo(done.stdout.rstrip() or done.stderr.rstrip())
    if done.returncode != 0:
        raise SystemExit(done.returncode if done.returncode < 128 else 1)


@service.command("logs")
@_scope_option
@click.option("-n", "--lines", default=100, show_default=True, type=click.IntRange(1), help="How many lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def service_logs(system: bool, lines: int, follow: bool) -> None:
    """Show the service's log (journalctl)."""
    scope = _scope(system)
    _need_systemd(scope)
    command = [
        "journalctl",
        *(["--user"] if scope == "user" else []),
        "-u",
        SERVICE_NAME,
        "-n",
        str(lines),
        "--no-pager",
    ]
    try:
        os.execvp(command[0], command + (["-f"] if follow else []))
    except OSError as e:
        raise CliError(f"cannot run journalctl: {e.strerror or e}") from None


@service.command("restart")
@_scope_option
def service_restart(system: bool) -> None:
    """Restart the service (after changing the config file, for instance)."""
    scope = _scope(system)
    _need_systemd(scope)
    _systemctl(scope, "restart", SERVICE_NAME)
    click.echo(f"restarted {SERVICE_NAME}")
