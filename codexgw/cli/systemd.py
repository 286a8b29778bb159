"""Talking to systemd for ``codexgw service`` and ``doctor``: is it running, ``systemctl``, and
``systemd-analyze verify``. Failures are one :class:`~codexgw.cli.common.CliError` line."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from codexgw.cli.common import CliError
from codexgw.cli.units import SERVICE_NAME

__all__ = ["systemctl", "systemd_running", "verify_unit"]


def systemd_running() -> bool:
    """True when systemd is the running init (``sd_booted()``: ``/run/systemd/system`` exists)."""
    return Path("/run/systemd/system").is_dir()


def systemctl(scope: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``systemctl [--user] ARGS`` (60 s at most) and return what it did.

    Raises:
        CliError: systemctl is missing, timed out, or (with ``check``) failed; its last stderr line.
    """
    command = ["systemctl", *(["--user"] if scope == "user" else []), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise CliError(
            "systemctl is not installed here; use --dry-run and install the unit by hand"
        ) from None
    except subprocess.TimeoutExpired:
        raise CliError(f"{' '.join(command)} did not finish within 60 s") from None
    if check and done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise CliError(f"{' '.join(command)} failed: {detail}")
    return done


def verify_unit(text: str) -> list[str]:
    """``systemd-analyze verify`` of ``text`` (its complaints, one per line); ``[]`` when the tool is
    missing or finds nothing."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{SERVICE_NAME}.service"
        path.write_text(text)
        done = subprocess.run([tool, "verify", str(path)], capture_output=True, text=True, timeout=60)
    lines = [
        line.replace(str(path), f"{SERVICE_NAME}.service")
        for line in done.stderr.splitlines()
        if line.strip()
    ]
    return lines or ([f"systemd-analyze verify exited {done.returncode}"] if done.returncode else [])
